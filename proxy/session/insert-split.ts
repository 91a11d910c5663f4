// A multi-row INSERT with parameters, split per shard: each shard gets only its rows, with the
// parameters renumbered 1..k, and the Bind values, formats and declared types that go with them.
import { renumberParams } from '../router/params.js';
import type { StatementPlan } from '../router/index.js';

export interface ShardInsert {
  sql: string;
  /** Declared parameter types for the shard's statement (0: let the server infer). */
  paramTypes: number[];
  values: (Buffer | null)[];
  /** Bind parameter formats: none or one (applies to all) stay as they are; one per parameter is subset. */
  formats: number[];
}

/**
 * `sql` is the statement's text, `plan` its insert-rows plan (row spans of this text), `rowShards`
 * the shard of each row. Types, values and formats are the client's.
 */
export function splitInsertRows(sql: string, plan: Extract<StatementPlan, { kind: 'insert-rows' }>, rowShards: readonly number[],
  paramTypes: readonly number[], values: readonly (Buffer | null)[], formats: readonly number[]): Map<number, ShardInsert> {
  const rowsByShard = new Map<number, string[]>();
  rowShards.forEach((shard, i) => {
    const [start, end] = plan.rowSpans[i]!;
    let rows = rowsByShard.get(shard);
    if (!rows) rowsByShard.set(shard, (rows = []));
    rows.push(sql.slice(start, end));
  });
  const head = sql.slice(plan.head[0], plan.head[1]);
  const tail = sql.slice(plan.tail[0], plan.tail[1]);
  const out = new Map<number, ShardInsert>();
  for (const [shard, rows] of rowsByShard) {
    const r = renumberParams(`${head}${rows.join(', ')}${tail}`);
    out.set(shard, {
      sql: r.sql,
      paramTypes: r.oldNumbers.map((n) => paramTypes[n - 1] ?? 0),
      values: r.oldNumbers.map((n) => values[n - 1] ?? null),
      formats: formats.length > 1 ? r.oldNumbers.map((n) => formats[n - 1]!) : [...formats],
    });
  }
  return out;
}
