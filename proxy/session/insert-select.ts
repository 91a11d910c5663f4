// INSERT INTO t (cols) SELECT … into a sharded table, when the query reads no sharded table
// (generate_series, VALUES, reference tables, literals): every shard runs the query and keeps the
// rows whose key it owns. The query is wrapped, keeping the rest of the statement as written:
//
//   INSERT INTO t (id, v) SELECT pgtide_src.* FROM (
//   SELECT g, md5(g::text) FROM generate_series(1, 10000) g
//   ) AS pgtide_src(pgtide_c0) WHERE <hash(pgtide_c0) in the shard's ranges> [ON CONFLICT …] [RETURNING …]
//
// The session runs it as a fan-out write, in a transaction on every shard committed together, so
// the rows land all or none. The analyzer refused queries whose keys could differ between shards
// (volatile functions) and queries that read sharded or single-shard tables.
import { anyRangeSql, hashSql } from '../../config/hash-sql.js';
import type { RoutingIndex } from '../../config/routing.js';
import { findInsertQuery } from '../router/lexer.js';
import type { StatementPlan } from '../router/index.js';
import { PgtideError } from '../../config/errors.js';

/** The statement each shard runs, by shard id: the query is found and the key's hash built once. */
export function insertSelectRewriter(sql: string, plan: Extract<StatementPlan, { kind: 'insert-select' }>, index: RoutingIndex): (shardId: number) => string {
  const span = findInsertQuery(sql, 0, sql.length);
  const info = index.table(plan.table);
  if (!span || info?.keyspaceId === undefined || info.keyType === undefined) {
    throw new PgtideError('INSERT_SELECT', `pgtide could not find the query of this INSERT … SELECT into ${plan.table}`, { sqlstate: 'XX000' });
  }
  const keyspaceId = info.keyspaceId;
  const aliases = Array.from({ length: plan.keyPosition + 1 }, (_, i) => `pgtide_c${i}`);
  const hash = hashSql(info.keyType, `pgtide_src.${aliases[plan.keyPosition]}`);
  // Newlines around the query: a trailing -- comment in it must not swallow the closing parenthesis.
  const head = `${sql.slice(0, span[0])}SELECT pgtide_src.* FROM (\n${sql.slice(span[0], span[1])}\n) AS pgtide_src(${aliases.join(', ')}) WHERE `;
  const tail = sql.slice(span[1]);
  return (shardId) => `${head}${anyRangeSql(hash, index.ownedRanges(keyspaceId, shardId))}${tail}`;
}
