// SHARD TABLE t BY (col) [PARTITIONS n] [COLOCATE WITH other | ALONE]: declare a sharded table.
import { normalizeKeyType } from '../../../config/config-file.js';
import { ConfigError } from '../../../config/config-file.js';
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { identifier } from './identifiers.js';

export const shardTable: AdminCommand = {
  syntax: 'SHARD TABLE t BY (col) [PARTITIONS n] [COLOCATE WITH other | ALONE]',
  description: 'declare a sharded table (it must exist, created through the proxy, and be empty)',
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
    for (const s of shards) {
      const rows = await backend.queryShard(s.id, `SELECT EXISTS (SELECT 1 FROM ${quoteName(name)}) AS has_rows`);
      if (rows[0]?.has_rows) {
        throw new AdminError('TABLE_NOT_EMPTY', `table "${name}" already holds rows on shard ${s.id}`, {
          sqlstate: '0A000',
          detail: 'sharding a table that already has data means moving its rows between servers, which needs the live mover; this version only shards empty tables',
          hint: 'create the table empty, SHARD TABLE it, then load the rows through the proxy',
        });
      }
    }
    const version = await backend.catalog.shardTable(name, column, keyType, {
      ...(partitions !== undefined ? { partitions } : {}),
      ...(colocateWith !== undefined ? { colocateWith } : {}),
      ...(m[5] ? { alone: true } : {}),
    });
    if (version === null) throw new AdminError('ALREADY_SHARDED', `table "${name}" is already sharded by (${column})`, { sqlstate: '42710' });
    await backend.reload();
    const sequences = await interleaveSequences(name, shards.map((s) => s.id), backend.queryShard.bind(backend));
    const notices = [`routing version ${version}: ${name} sharded by ${column} (${keyType})`];
    if (sequences.length > 0) notices.push(`sequences ${sequences.join(', ')}: shard i hands out i+1, i+1+${SEQUENCE_STRIDE}, … (no collisions across shards)`);
    return { tag: 'SHARD TABLE', notices };
  },
};

/**
 * Sequences and identity columns of a sharded table never collide across shards: every shard
 * keeps its own sequence, stepping by SEQUENCE_STRIDE from its own start, so shard i hands out
 * exactly the values congruent to i+1 modulo the stride (shard 0: 1, 65, 129…; shard 1: 2, 66…).
 * The stride is fixed (not the shard count) so that shards added later get residues of their
 * own without renumbering anyone; it caps the scheme at SEQUENCE_STRIDE shards. An integer
 * serial still has 2^31/64 ≈ 33 million values per shard; bigserial is the sensible key.
 * The table is empty when it is sharded, so each sequence restarts at its shard's first value.
 */
export const SEQUENCE_STRIDE = 64;

type QueryShard = (shardId: number, sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** Apply the per-shard sequence scheme to every sequence owned by `table` (serial or identity); returns their names. */
export async function interleaveSequences(table: string, shardIds: number[], queryShard: QueryShard): Promise<string[]> {
  const names = new Set<string>();
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
      await queryShard(id, `ALTER SEQUENCE ${seq} INCREMENT BY ${SEQUENCE_STRIDE} MINVALUE 1 START WITH ${id + 1} RESTART WITH ${id + 1}`);
    }
  }
  return [...names];
}

function quoteName(name: string): string {
  return name.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}
