// Per-shard statement latency histogram with fixed buckets: observe() allocates nothing.

/** Upper bounds in seconds (Prometheus `le`), chosen for a proxy: 100 µs … 10 s. */
export const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** Latencies kept per shard for recent-window quantiles (the mover's throttle), newest overwrite oldest. */
export const RECENT_LATENCIES = 4096;

interface ShardLatencies {
  counts: Float64Array;
  sum: number;
  count: number;
  /** Ring of the last RECENT_LATENCIES observations: when (performance.now() ms) and how long (ms). */
  at: Float64Array;
  ms: Float64Array;
}

export class LatencyHistogram {
  private readonly perShard = new Map<number, ShardLatencies>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** `atMs`: when the statement ended (performance.now()), if the caller already read the clock. */
  observe(shardId: number, seconds: number, atMs?: number): void {
    let h = this.perShard.get(shardId);
    if (!h) {
      h = { counts: new Float64Array(LATENCY_BUCKETS_S.length), sum: 0, count: 0, at: new Float64Array(RECENT_LATENCIES), ms: new Float64Array(RECENT_LATENCIES) };
      this.perShard.set(shardId, h);
    }
    const slot = h.count % RECENT_LATENCIES;
    h.at[slot] = atMs ?? this.now();
    h.ms[slot] = seconds * 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[i]!) i++;
    if (i < LATENCY_BUCKETS_S.length) h.counts[i]! += 1;
    h.sum += seconds;
    h.count += 1;
  }

  /** Prometheus text exposition (cumulative buckets). */
  exposition(name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    for (const [shard, h] of [...this.perShard].sort((a, b) => a[0] - b[0])) {
      let cum = 0;
      LATENCY_BUCKETS_S.forEach((le, i) => {
        cum += h.counts[i]!;
        lines.push(`${name}_bucket{shard="${shard}",le="${le}"} ${cum}`);
      });
      lines.push(`${name}_bucket{shard="${shard}",le="+Inf"} ${h.count}`);
      lines.push(`${name}_sum{shard="${shard}"} ${h.sum}`);
      lines.push(`${name}_count{shard="${shard}"} ${h.count}`);
    }
    return `${lines.join('\n')}\n`;
  }

  /** Approximate quantile over all shards from the buckets (upper bound of the bucket that holds it). */
  quantile(q: number): number | null {
    const total = new Float64Array(LATENCY_BUCKETS_S.length);
    let n = 0;
    for (const h of this.perShard.values()) {
      h.counts.forEach((c, i) => (total[i]! += c));
      n += h.count;
    }
    if (n === 0) return null;
    let cum = 0;
    for (let i = 0; i < total.length; i++) {
      cum += total[i]!;
      if (cum >= q * n) return LATENCY_BUCKETS_S[i]!;
    }
    return LATENCY_BUCKETS_S[LATENCY_BUCKETS_S.length - 1]!;
  }

  /**
   * The q-quantile (exact, ms) of this shard's statement latencies that ended at or after
   * `sinceMs` (performance.now() time), and how many there were; null when none are kept.
   */
  recentQuantile(shardId: number, q: number, sinceMs: number): { ms: number; n: number } | null {
    const h = this.perShard.get(shardId);
    if (!h) return null;
    const kept = Math.min(h.count, RECENT_LATENCIES);
    const xs: number[] = [];
    for (let k = 0; k < kept; k++) {
      const slot = (h.count - 1 - k) % RECENT_LATENCIES;
      if (h.at[slot]! < sinceMs) break;
      xs.push(h.ms[slot]!);
    }
    if (xs.length === 0) return null;
    xs.sort((a, b) => a - b);
    return { ms: xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!, n: xs.length };
  }
}
