// SHARD TABLE t BY (col) [PARTITIONS n] [COLOCATE WITH other | ALONE]: declare a sharded table.
import { normalizeKeyType } from '../../../config/config-file.js';
import { ConfigError } from '../../../config/config-file.js';
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { identifier } from './identifiers.js';
import { defaultPartitions } from '../../../config/routing.js';
import { SEQUENCE_STRIDE, sequenceStart } from '../../../config/sequences.js';

export const shardTable: AdminCommand = {
  syntax: 'SHARD TABLE t BY (col) [PARTITIONS n] [COLOCATE WITH other | ALONE]',
  description: 'declare a sharded table (it must exist, created through the proxy; rows already on the primary shard are spread by move jobs)',
  pattern: /^shard\s+table\s+(\S+)\s+by\s*\(\s*([^)\s]+)\s*\)(?:\s+partitions\s+(\S+))?(?:\s+(?:colocate\s+with\s+(\S+)|(alone)))?$/i,
  async run({ proxy, backend }, m) {
    const name = identifier(m[1]!, 'table name');
    const column = identifier(m[2]!, 'column name');
    let partitions: number | undefined;
    if (m[3] !== undefined) {
      partitions = Number(m[3]);
      if (!Number.isInteger(partitions) || partitions < 1 || partitions > 4096) {
        throw new AdminError('BAD_PARTITIONS', `PARTITIONS must be an integer between 1 and 4096, got ${m[3]}`, { sqlstate: '22023' });
      }
    }
    const colocateWith = m[4] === undefined ? undefined : identifier(m[4], 'table name');
    const shards = proxy.routingTable().shards.filter((s) => s.state === 'active' || s.state === 'draining');
    // The key's type decides the hash, so read it from the table itself, on every shard.
    const types = new Set<string>();
    for (const s of shards) {
      const rows = await backend.queryShard(s.id,
        `SELECT format_type(a.atttypid, NULL) AS type FROM pg_attribute a
          WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, [name, column]);
      const exists = await backend.queryShard(s.id, 'SELECT to_regclass($1) IS NOT NULL AS ok', [name]);
      if (!exists[0]?.ok) {
        throw new AdminError('UNKNOWN_TABLE', `relation "${name}" does not exist on shard ${s.id}`, {
          sqlstate: '42P01', hint: 'create the table through the proxy first: DDL goes to every shard',
        });
      }
      if (rows.length === 0) throw new AdminError('UNKNOWN_COLUMN', `column "${column}" of relation "${name}" does not exist`, { sqlstate: '42703' });
      types.add(String(rows[0]!.type));
    }
    if (types.size > 1) {
      throw new AdminError('SCHEMA_MISMATCH', `column "${column}" of "${name}" has different types on different shards: ${[...types].join(', ')}`, { sqlstate: '42804' });
    }
    const typeName = [...types][0]!.replace(/\(.*\)$/, '');
    let keyType;
    try {
      keyType = normalizeKeyType(typeName, 'key');
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new AdminError('BAD_KEY_TYPE', `cannot shard by "${column}" of type ${typeName}: the key must be smallint, integer, bigint, text, varchar or uuid`, { sqlstate: '42804' });
      }
      throw err;
    }
    // An unsharded table lives on the primary shard: rows there (and only there) are spread by
    // move jobs after the table is sharded with every partition on that shard. Rows on several
    // shards have no single owner to start from.
    const home = proxy.routing().primaryShardId;
    const withRows: number[] = [];
    for (const s of shards) {
      const rows = await backend.queryShard(s.id, `SELECT EXISTS (SELECT 1 FROM ${quoteName(name)}) AS has_rows`);
      if (rows[0]?.has_rows) withRows.push(s.id);
    }
    if (withRows.some((id) => id !== home)) {
      throw new AdminError('TABLE_NOT_EMPTY', `table "${name}" already holds rows on shard${withRows.length > 1 ? 's' : ''} ${withRows.join(', ')}`, {
        sqlstate: '0A000',
        detail: `pgtide spreads the rows of a table that are all on shard ${home} (where an unsharded table lives); rows put on other servers directly have no owner to start from`,
        hint: `move them to shard ${home} first, or create the table empty, SHARD TABLE it, then load the rows through the proxy`,
      });
    }
    const spread = withRows.length > 0;
    if (spread && !backend.jobs) {
      throw new AdminError('TABLE_NOT_EMPTY', `table "${name}" already holds rows on shard ${home}, and live moves are not available in this process to spread them`, { sqlstate: '0A000' });
    }
    const version = await backend.catalog.shardTable(name, column, keyType, {
      ...(partitions !== undefined ? { partitions } : {}),
      ...(colocateWith !== undefined ? { colocateWith } : {}),
      ...(m[5] ? { alone: true } : {}),
      ...(spread ? { placeAllOn: home } : {}),
    });
    if (version === null) throw new AdminError('ALREADY_SHARDED', `table "${name}" is already sharded by (${column})`, { sqlstate: '42710' });
    await backend.reload();
    const sequences = await interleaveSequences(name, shards.map((s) => s.id), backend.queryShard.bind(backend), { aboveExisting: spread });
    const notices = [`routing version ${version}: ${name} sharded by ${column} (${keyType})`];
    if (sequences.length > 0) notices.push(`sequences ${sequences.join(', ')}: shard i hands out i+1, i+1+${SEQUENCE_STRIDE}, … (no collisions across shards)`);
    if (!spread) return { tag: 'SHARD TABLE', notices };
    // Each partition goes where it would have been placed had the table been empty.
    const table = proxy.routingTable();
    const keyspaceId = proxy.routing().tableInfo(name)?.keyspaceId;
    const parts = table.partitions.filter((p) => p.keyspaceId === keyspaceId).sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
    const active = table.shards.filter((s) => s.state === 'active').map((s) => s.id).sort((a, b) => a - b);
    const intended = defaultPartitions(keyspaceId ?? 0, parts.length, active);
    const rows: (number | string)[][] = [];
    for (const [i, p] of parts.entries()) {
      const target = intended[i]!.shardId;
      if (target === p.shardId) continue;
      try {
        const job = await backend.jobs!.move(p.id, target);
        rows.push([job.id, p.id, target]);
      } catch (err) {
        notices.push(`partition ${p.id} stays on shard ${p.shardId}: ${(err as Error).message}`);
      }
    }
    notices.push(`the rows of ${name} are all on shard ${home}; ${rows.length} move job${rows.length === 1 ? '' : 's'} spread ${parts.length} partitions over shards ${active.join(', ')} (SHOW JOBS follows them; reads and writes go on meanwhile)`);
    return { tag: 'SHARD TABLE', columns: ['job', 'partition', 'target_shard'], rows, notices };
  },
};

/**
 * The per-shard sequence scheme (config/sequences.ts): shard i hands out i+1, i+1+64, … An empty
 * table's sequences restart at their shard's first value; a table whose rows are being spread
 * (`aboveExisting`) starts every shard above the highest value any shard handed out already.
 */
export { SEQUENCE_STRIDE };

type QueryShard = (shardId: number, sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** Apply the per-shard sequence scheme to every sequence owned by `table` (serial or identity); returns their names. */
export async function interleaveSequences(table: string, shardIds: number[], queryShard: QueryShard, opts: { aboveExisting?: boolean } = {}): Promise<string[]> {
  const names = new Set<string>();
  const floors = new Map<string, bigint>();
  if (opts.aboveExisting) {
    for (const id of shardIds) {
      const seqs = await queryShard(id, `SELECT d.objid::regclass::text AS seq FROM pg_depend d JOIN pg_sequence q ON q.seqrelid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass($1) AND d.deptype IN ('a', 'i')`, [quoteName(table)]);
      for (const row of seqs) {
        const seq = String(row.seq);
        const v = await queryShard(id, `SELECT (CASE WHEN is_called THEN last_value ELSE last_value - 1 END)::text AS v FROM ${seq}`);
        const n = BigInt(String(v[0]?.v ?? '0'));
        if (n > (floors.get(seq) ?? 0n)) floors.set(seq, n);
      }
    }
  }
  for (const id of shardIds) {
    const seqs = await queryShard(id,
      `SELECT d.objid::regclass::text AS seq FROM pg_depend d JOIN pg_sequence q ON q.seqrelid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass($1) AND d.deptype IN ('a', 'i')
        ORDER BY 1`, [quoteName(table)]);
    if (seqs.length === 0) continue;
    if (id >= SEQUENCE_STRIDE) {
      throw new AdminError('TOO_MANY_SHARDS_FOR_SEQUENCES', `shard ${id} has no sequence residue: the per-shard sequence scheme supports shard ids below ${SEQUENCE_STRIDE}`, { sqlstate: '54000' });
    }
    for (const row of seqs) {
      const seq = String(row.seq);
      names.add(seq);
      const start = sequenceStart(id, floors.get(seq) ?? 0n);
      await queryShard(id, `ALTER SEQUENCE ${seq} INCREMENT BY ${SEQUENCE_STRIDE} MINVALUE 1 START WITH ${start} RESTART WITH ${start}`);
    }
  }
  return [...names];
}

function quoteName(name: string): string {
  return name.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}
