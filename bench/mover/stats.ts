// Small statistics helpers for the mover benchmarks (nearest-rank quantiles, medians, formatting).

/** Nearest-rank quantile of an unsorted list (NaN when empty). With 20 samples, p99 is the maximum. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function max(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => (b > a ? b : a), -Infinity);
}

export function summary(xs: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  return { n: xs.length, p50: round(quantile(xs, 0.5)), p99: round(quantile(xs, 0.99)), max: round(max(xs)) };
}

export function round(x: number, digits = 1): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Wall-clock milliseconds with sub-ms resolution, comparable across worker threads of one process. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/**
 * Event-loop lag of this thread (the proxy's and the mover's), sampled every `everyMs`: how late
 * each timer fired. Samples carry their time so they can be cut into windows afterwards.
 */
export class LoopLag {
  private at: number[] = [];
  private lag: number[] = [];
  private timer: NodeJS.Timeout | null = null;

  start(everyMs = 5): this {
    let expected = nowMs() + everyMs;
    this.timer = setInterval(() => {
      const now = nowMs();
      this.at.push(now);
      this.lag.push(Math.max(0, now - expected));
      expected = now + everyMs;
    }, everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Lags (ms) sampled in [from, to). */
  within(from: number, to: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.at.length; i++) if (this.at[i]! >= from && this.at[i]! < to) out.push(this.lag[i]!);
    return out;
  }
}
