// Load history → one load-rate series per partition (summed over proxies and tables, per forecast step).
//
// Each step's value is loadScore(Σ counters) / step seconds, i.e. load units per second. A step in
// which the recorder wrote nothing for any partition is missing (null: the proxies were down, the
// predictor interpolates); a step in which it wrote rows for others but not for this partition is 0
// (the recorder writes nothing for an idle partition). A partition's series begins at its first row.
// With the autopilot's splits and merges (lineage.ts), the series of a piece is its range's history:
// its share of the parent's past before the split, the removed partition's past added after a merge.
import type pg from 'pg';
import { loadScore } from '../predictor/index.js';
import { applyLineage, type LineageEvent } from './lineage.js';

export interface PartitionHistory {
  partitionId: number;
  /** Start of the first step, ms. */
  startMs: number;
  stepMs: number;
  values: (number | null)[];
}

export interface HistoryRead {
  /** Start of the first step and one past the last complete step, ms. */
  startMs: number;
  endMs: number;
  stepMs: number;
  series: Map<number, PartitionHistory>;
}

/** Reads the last `maxSteps` complete steps before `nowMs`, re-cut by the given splits and merges. */
export async function readLoadHistory(pool: pg.Pool, stepS: number, maxSteps: number, nowMs: number, lineage: readonly LineageEvent[] = []): Promise<HistoryRead> {
  const stepMs = stepS * 1000;
  const endMs = Math.floor(nowMs / stepMs) * stepMs;
  const fromMs = endMs - maxSteps * stepMs;
  const { rows } = await pool.query<{ partition_id: number; s: string; reads: number; writes: number; rows: number; bytes: number; lat_ms: number }>(
    `SELECT partition_id, floor(extract(epoch FROM bucket) * 1000 / $3)::bigint::text AS s,
            sum(reads)::float8 AS reads, sum(writes)::float8 AS writes, sum(rows)::float8 AS rows,
            sum(bytes_in + bytes_out)::float8 AS bytes, (sum(latency_us) / 1000)::float8 AS lat_ms
       FROM pgtide.load_history
      WHERE bucket >= to_timestamp($1::float8 / 1000) AND bucket < to_timestamp($2::float8 / 1000)
      GROUP BY 1, 2`, [fromMs, endMs, stepMs]);
  const full = new Map<number, (number | null)[]>();
  const seen = new Set<number>();
  let first = Infinity;
  for (const r of rows) first = Math.min(first, Number(r.s) * stepMs);
  const startMs = Number.isFinite(first) ? first : endMs;
  const n = Math.max(0, Math.round((endMs - startMs) / stepMs));
  for (const r of rows) {
    const i = Math.round((Number(r.s) * stepMs - startMs) / stepMs);
    if (i < 0 || i >= n) continue;
    seen.add(i);
    let v = full.get(r.partition_id);
    if (!v) {
      v = new Array<number | null>(n).fill(null);
      full.set(r.partition_id, v);
    }
    v[i] = loadScore({ reads: r.reads, writes: r.writes, rows: r.rows, bytes: r.bytes, latencyMs: r.lat_ms }) / stepS;
  }
  for (const v of full.values()) {
    const firstRow = v.findIndex((x) => x !== null);
    for (let i = firstRow; i < n; i++) if (v[i] === null && seen.has(i)) v[i] = 0;
  }
  const series = new Map<number, PartitionHistory>();
  for (const [id, v] of lineage.length ? applyLineage(full, startMs, stepMs, n, lineage) : full) {
    // A partition's series starts at its first value: before it, its range had no recorded past.
    const firstRow = v.findIndex((x) => x !== null);
    if (firstRow < 0) continue;
    series.set(id, { partitionId: id, startMs: startMs + firstRow * stepMs, stepMs, values: v.slice(firstRow) });
  }
  return { startMs, endMs, stepMs, series };
}
