// Load history → one load-rate series per partition (summed over proxies and tables, per forecast step).
//
// Each step's value is loadScore(Σ counters) / step seconds, i.e. load units per second. A step in
// which the recorder wrote nothing for any partition is missing (null: the proxies were down, the
// predictor interpolates); a step in which it wrote rows for others but not for this partition is 0
// (the recorder writes nothing for an idle partition). A partition's series begins at its first row.
import type pg from 'pg';
import { loadScore } from '../predictor/index.js';

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

/** Reads the last `maxSteps` complete steps before `nowMs`. */
export async function readLoadHistory(pool: pg.Pool, stepS: number, maxSteps: number, nowMs: number): Promise<HistoryRead> {
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
  const series = new Map<number, PartitionHistory>();
  const seen = new Set<number>();
  let first = Infinity;
  for (const r of rows) first = Math.min(first, Number(r.s) * stepMs);
  const startMs = Number.isFinite(first) ? first : endMs;
  const n = Math.max(0, Math.round((endMs - startMs) / stepMs));
  for (const r of rows) {
    const i = Math.round((Number(r.s) * stepMs - startMs) / stepMs);
    if (i < 0 || i >= n) continue;
    seen.add(i);
    let h = series.get(r.partition_id);
    if (!h) {
      h = { partitionId: r.partition_id, startMs, stepMs, values: new Array<number | null>(n).fill(null) };
      series.set(r.partition_id, h);
    }
    h.values[i] = loadScore({ reads: r.reads, writes: r.writes, rows: r.rows, bytes: r.bytes, latencyMs: r.lat_ms }) / stepS;
  }
  for (const h of series.values()) {
    // A partition's series starts at its first row (a piece created by a split has no earlier past).
    const firstRow = h.values.findIndex((v) => v !== null);
    for (let i = firstRow; i < n; i++) if (h.values[i] === null && seen.has(i)) h.values[i] = 0;
    h.values = h.values.slice(firstRow);
    h.startMs = startMs + firstRow * stepMs;
  }
  return { startMs, endMs, stepMs, series };
}
