// Partition sizes (what a move adds to its target) and the max_bytes capacity check a move must pass.
//
// Postgres cannot see free disk, so a shard's room is what the DBA declares: an optional
// `max_bytes` per shard (ALTER SHARD n SET max_bytes = …), compared with the target database's
// pg_database_size plus what moves already planned to it will bring, plus the partition's size.
// A partition's size is its share of its tables' pg_total_relation_size on the source (heap,
// indexes and TOAST), the share being its rows' pg_column_size over all rows of the table there.
import type pg from 'pg';
import type { KeyType } from '../config/types.js';
import { MoverError } from './errors.js';
import { hashExpr, quoteIdent, quoteTable } from './sql.js';

export interface SizedTable {
  name: string;
  keyColumn: string;
  keyType: KeyType;
}

export interface PartitionBound {
  id: number;
  lo: bigint;
}

export interface PartitionSize {
  rows: number;
  bytes: number;
}

/** Above this many rows (planner estimate) the share is measured on a page sample, not every row. */
const SAMPLE_ABOVE_ROWS = 200_000;

/**
 * Estimated rows and bytes on one shard of every partition in `bounds` (all partitions of one
 * key space, any order): one pass per table, grouping rows by partition with width_bucket over the
 * partitions' lower bounds. Partitions with no rows there are absent from the map.
 */
export async function partitionSizes(c: pg.ClientBase | pg.Pool, tables: SizedTable[], bounds: PartitionBound[]): Promise<Map<number, PartitionSize>> {
  const sorted = [...bounds].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const los = sorted.map((b) => b.lo.toString());
  const out = new Map<number, PartitionSize>();
  for (const t of tables) {
    const q = quoteTable(t.name);
    const rel = await c.query<{ n: number; total: number }>(
      'SELECT reltuples::float8 AS n, pg_total_relation_size(oid)::float8 AS total FROM pg_class WHERE oid = to_regclass($1)', [q]);
    if (!rel.rows[0]) continue;
    const { n, total } = rel.rows[0];
    const pct = n > SAMPLE_ABOVE_ROWS ? Math.max(0.1, (100 * SAMPLE_ABOVE_ROWS) / n) : 100;
    const sample = pct < 100 ? ` TABLESAMPLE SYSTEM (${pct.toFixed(3)})` : '';
    const { rows } = await c.query<{ b: number; n: number; w: number }>(
      `SELECT width_bucket(${hashExpr(t.keyType, `pgtide_r.${quoteIdent(t.keyColumn)}`)}, $1::int8[]) AS b, count(*)::float8 AS n,
              coalesce(sum(pg_column_size(pgtide_r.*)), 0)::float8 AS w
         FROM ${q} AS pgtide_r${sample} GROUP BY 1`, [los]);
    const allWidth = rows.reduce((a, r) => a + r.w, 0);
    for (const r of rows) {
      const part = sorted[r.b - 1];
      if (!part) continue;
      const prev = out.get(part.id) ?? { rows: 0, bytes: 0 };
      prev.rows += Math.round((r.n * 100) / pct);
      prev.bytes += allWidth > 0 ? Math.round((total * r.w) / allWidth) : 0;
      out.set(part.id, prev);
    }
  }
  return out;
}

/** Bytes the sharded tables occupy on a shard (heap + indexes + TOAST): the balance measure of DRAIN SHARD. */
export async function shardTableBytes(c: pg.ClientBase | pg.Pool, tables: string[]): Promise<number> {
  if (tables.length === 0) return 0;
  const { rows } = await c.query<{ b: number }>(
    'SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0)::float8 AS b FROM unnest($1::text[]) AS t', [tables.map(quoteTable)]);
  return rows[0]?.b ?? 0;
}

/** What a target shard holds and has promised, against its declared capacity. */
export interface ShardRoom {
  shardId: number;
  /** Declared capacity; null: unlimited (then nothing is measured). */
  maxBytes: number | null;
  /** pg_database_size of the shard's application database. */
  usedBytes: number;
  /** Sizes recorded by unfinished moves to this shard that have not switched yet. */
  reservedBytes: number;
  reservedJobs: number[];
}

/** The shard's max_bytes and, when it has one, its use and the room promised to planned moves. */
export async function shardRoom(catalog: pg.Pool | pg.PoolClient, shard: () => Promise<pg.Pool>, shardId: number, exceptJob?: number): Promise<ShardRoom> {
  const { rows } = await catalog.query<{ max_bytes: string | null }>('SELECT max_bytes::text AS max_bytes FROM pgtide.shards WHERE id = $1', [shardId]);
  const maxBytes = rows[0]?.max_bytes == null ? null : Number(rows[0].max_bytes);
  if (maxBytes === null) return { shardId, maxBytes, usedBytes: 0, reservedBytes: 0, reservedJobs: [] };
  const used = await (await shard()).query<{ b: number }>('SELECT pg_database_size(current_database())::float8 AS b');
  // A job that already switched has its rows in pg_database_size; one still copying is counted in
  // full on top of what it copied so far (conservative: it can only refuse too early, never too late).
  const jobs = await catalog.query<{ id: number; b: number }>(
    `SELECT id, (progress->>'sizeBytes')::float8 AS b FROM pgtide.jobs
      WHERE target_shard = $1 AND state NOT IN ('cleanup', 'done', 'cancelled', 'rolled_back') AND progress ? 'sizeBytes' AND id IS DISTINCT FROM $2
      ORDER BY id`, [shardId, exceptJob ?? null]);
  return {
    shardId, maxBytes, usedBytes: used.rows[0]?.b ?? 0,
    reservedBytes: jobs.rows.reduce((a, r) => a + (r.b ?? 0), 0), reservedJobs: jobs.rows.map((r) => r.id),
  };
}

/** Bytes as a DBA reads them: pg_size_pretty's units plus the exact number. */
export function fmtBytes(n: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 10 * 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const pretty = i === 0 ? `${Math.round(v)} bytes` : `${Math.round(v)} ${units[i]}`;
  return i === 0 ? pretty : `${pretty} (${Math.round(n)} bytes)`;
}

/** Null when `needBytes` fits; otherwise the 53100 refusal naming every number. */
export function capacityRefusal(room: ShardRoom, partitionId: number, needBytes: number): MoverError | null {
  if (room.maxBytes === null) return null;
  const after = room.usedBytes + room.reservedBytes + needBytes;
  if (after <= room.maxBytes) return null;
  const reserved = room.reservedJobs.length > 0 ? `, moves already planned to it (jobs ${room.reservedJobs.join(', ')}) will bring ${fmtBytes(room.reservedBytes)}` : '';
  return new MoverError('TARGET_FULL',
    `shard ${room.shardId} has no room for partition ${partitionId}: it holds ${fmtBytes(room.usedBytes)} (pg_database_size)${reserved} and the partition needs about ${fmtBytes(needBytes)}, ${fmtBytes(after)} in all, above its max_bytes of ${fmtBytes(room.maxBytes)}`, {
      sqlstate: '53100', hint: `pick another shard, or raise the limit: ALTER SHARD ${room.shardId} SET max_bytes = '…'`,
    });
}
