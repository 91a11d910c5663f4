// The load score of a partition per interval: one number that says how much work it costs the server.
//
//   score = reads + 3·writes + rows/100 + bytes/65536 + latencyMs/5
//
// The unit is "one simple indexed read". Why each term:
// - writes × 3: a write pays WAL, index maintenance and its share of fsync, and is doubled while a
//   range is being moved (dual writes); measured OLTP write/read cost ratios sit around 2–4.
// - rows / 100: queries alone are not load; a scan touching 10,000 rows is 100 reads' worth of CPU.
// - bytes / 64 KiB: result bytes cost serialization and network; 64 KiB ≈ one read's worth.
// - latencyMs / 5: the summed server time of the interval (not a mean) is the most direct measure
//   of CPU and I/O used, and catches expensive queries the counts miss; 5 ms ≈ one read under load.
// The weights are named constants so they can be re-fitted against pg_stat CPU time later; every
// term is linear, so scores of partitions add up to the score of a shard.

export interface LoadCounters {
  reads: number;
  writes: number;
  /** Rows returned or affected. */
  rows: number;
  /** Bytes sent to clients plus bytes received in writes. */
  bytes: number;
  /** Sum of query latencies over the interval, in ms. */
  latencyMs: number;
}

export const WRITE_WEIGHT = 3;
export const ROWS_PER_UNIT = 100;
export const BYTES_PER_UNIT = 65_536;
export const LATENCY_MS_PER_UNIT = 5;

export function loadScore(c: Partial<LoadCounters>): number {
  const v = (x: number | undefined): number => (x !== undefined && Number.isFinite(x) && x > 0 ? x : 0);
  return v(c.reads) + WRITE_WEIGHT * v(c.writes) + v(c.rows) / ROWS_PER_UNIT
    + v(c.bytes) / BYTES_PER_UNIT + v(c.latencyMs) / LATENCY_MS_PER_UNIT;
}

/** Load-score series from per-interval counters (null intervals stay missing). */
export function loadScoreSeries(counters: readonly (Partial<LoadCounters> | null)[]): (number | null)[] {
  return counters.map((c) => (c === null ? null : loadScore(c)));
}
