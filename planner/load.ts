// Shard planning load: the expected load held to the utilization cap, the p90 to a limit derived
// from the target latency.
//
// The utilization cap (shardMaxUtilization, 70 % in the bench) is already headroom: the target p99
// is only missed at 90 % (p99 = base / (1 − u)). Holding the forecast's p90 to that cap stacks a
// second margin on the first, so a forecaster with an honest interval needs more servers than one
// without; the extra servers are added in the morning and drained at night, and each of them costs
// moves (the simulator charges a cutover pause per move). So a shard's load per step is checked
// twice: its centre (Σ median, or mean where higher) against the cap, and its Σ p90 against the
// hard limit, the utilization that meets the target p99 times upperFill (77 % in the bench). Both
// checks are one comparison against the cap:
//
//   planning load = max(Σ centre, upperScale · Σ p90),   upperScale = cap / hard limit
//
// For a forecast without an interval (centre = p90, the simulator's oracle) this is Σ p90 as before;
// with an interval narrower than hard/cap (9 % in the bench) the centre decides; with a wider one
// the p90 does. upperScale = 1 is the plain rule (Σ p90 against the cap): with upperFill 0, and in
// stretched placement, whose cap (shortageFill of the latency limit) is already above the hard limit.
// Σ p90 is kept (not a √Σ of independent errors): tried in the simulator, it saved servers but not
// moves, and gave up the headroom that absorbed an unannounced flash crowd.

/** A partition's load per step as the shard sum needs it. */
export interface LoadSeries {
  /** Expected peak per step (median, or mean where higher), ≤ upper. */
  center: Float64Array;
  /** Upper quantile (p90) per step. */
  upper: Float64Array;
}

/** Running sums of the partitions on one shard and the planning load they give. */
export class ShardLoad {
  readonly center: Float64Array;
  readonly upperSum: Float64Array;
  /** Planning load per step (updated in place by add and setUpperScale). */
  readonly series: Float64Array;
  upperScale = 1;

  constructor(readonly steps: number) {
    this.center = new Float64Array(steps);
    this.upperSum = new Float64Array(steps);
    this.series = new Float64Array(steps);
  }

  private plan(center: number, upper: number): number {
    return Math.max(center, this.upperScale * upper);
  }

  setUpperScale(x: number): void {
    this.upperScale = x;
    for (let i = 0; i < this.steps; i++) this.series[i] = this.plan(this.center[i]!, this.upperSum[i]!);
  }

  clear(): void {
    this.center.fill(0);
    this.upperSum.fill(0);
    this.series.fill(0);
  }

  add(w: LoadSeries, sign = 1): void {
    for (let i = 0; i < this.steps; i++) {
      this.center[i] = this.center[i]! + sign * w.center[i]!;
      this.upperSum[i] = this.upperSum[i]! + sign * w.upper[i]!;
      this.series[i] = this.plan(this.center[i]!, this.upperSum[i]!);
    }
  }

  /** Planning load at step i with w added (sign 1) or taken away (sign −1). */
  at(i: number, w: LoadSeries, sign = 1): number {
    return this.plan(this.center[i]! + sign * w.center[i]!, this.upperSum[i]! + sign * w.upper[i]!);
  }

  /** True if w fits under limit at every step below upTo. */
  fits(w: LoadSeries, limit: number, upTo = this.steps): boolean {
    for (let i = 0; i < Math.min(upTo, this.steps); i++) if (this.at(i, w) > limit + 1e-9) return false;
    return true;
  }

  /** Highest planning load over the steps below upTo with w added. */
  peakWith(w: LoadSeries, upTo = this.steps): number {
    let m = 0;
    for (let i = 0; i < Math.min(upTo, this.steps); i++) m = Math.max(m, this.at(i, w));
    return m;
  }

  /** The planning load with w added (sign 1) or taken away (sign −1), as a new array. */
  seriesWith(w: LoadSeries, sign = 1): Float64Array {
    const out = new Float64Array(this.steps);
    for (let i = 0; i < this.steps; i++) out[i] = this.at(i, w, sign);
    return out;
  }

  clone(): ShardLoad {
    const c = new ShardLoad(this.steps);
    c.copyFrom(this);
    return c;
  }

  copyFrom(o: ShardLoad): void {
    this.upperScale = o.upperScale;
    this.center.set(o.center);
    this.upperSum.set(o.upperSum);
    this.series.set(o.series);
  }
}

/** Planning load of one partition alone (on an empty shard), per step. */
export function aloneLoad(w: LoadSeries, upperScale: number): Float64Array {
  const out = new Float64Array(w.upper.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(w.center[i]!, upperScale * w.upper[i]!);
  return out;
}
