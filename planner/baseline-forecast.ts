// Baseline forecaster: seasonal naive with a level correction and conformal intervals (stand-in for predictor/).
//
// It lives in planner/ (not bench/) because `pgtide simulate` (planner/cli.ts) needs a forecaster
// and the planner may import neither predictor/ nor bench/. The real predictor plugs in through
// the same ForecastProvider interface in bench/planner/run.ts and in the composition root.
//
// Point forecast for tick τ ahead of now (T = first unseen tick, S = season):
//   ŷ(τ) = A(τ − S) · L,   L = Σ A[T−n, T) / Σ A[T−n−S, T−S)   (clamped to [LEVEL_MIN, LEVEL_MAX])
// where A is the history with announced events divided out (so last week's campaign does not come
// back as a ghost), and announced events ahead multiply the forecast by their multiplier. S is a
// week once enough history exists (weekday/weekend), else a day without the level (against
// yesterday a level would read a weekend as a trend), else the last value persists. A daily
// base with last week's weekday profile tracked drifting hot keys no better in the simulator.
// Intervals: split-conformal on the log ratio e = log(A(τ) / ŷ(τ)) over the last CALIBRATION
// days, with ŷ computed as it would have been CALIBRATION_LEAD earlier; the quantiles of e give
// p10/p50/p90/p99 multipliers, so an 80 % interval covers ~80 % of recent outcomes. Each forecast
// step reports the max of its ticks for the quantiles (short peaks matter) and their average for the mean.
import type { AnnouncedEvent, ForecastProvider, ForecastRequest, LoadHistory } from './forecast-provider.js';
import type { PartitionForecast, QuantileStep } from './types.js';

export const LEVEL_WINDOW_SECONDS = 6 * 3600;
export const LEVEL_MIN = 0.5;
export const LEVEL_MAX = 4;
export const CALIBRATION_SECONDS = 3 * 86400;
export const CALIBRATION_LEAD_SECONDS = 2 * 3600;
export const RECALIBRATE_SECONDS = 6 * 3600;
/** A forecast is reused for this long (the predictor refreshes on a similar cadence). */
export const REFRESH_SECONDS = 15 * 60;
const DAY = 86400;
const WEEK = 7 * DAY;
/** log-ratio quantiles used before there is history to calibrate on. */
const PRIOR_Q = { q10: Math.log(0.8), q50: 0, q90: Math.log(1.25), q99: Math.log(1.6), mean: 0 };

interface Calibration {
  atTick: number;
  q10: number;
  q50: number;
  q90: number;
  q99: number;
  /** log of the mean ratio, for the mean forecast. */
  mean: number;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return sorted[i]! + (i + 1 < sorted.length ? (sorted[i + 1]! - sorted[i]!) * f : 0);
}

export interface BaselineOptions {
  events?: AnnouncedEvent[];
  refreshSeconds?: number;
}

export function seasonalNaiveConformal(history: LoadHistory, opts: BaselineOptions = {}): ForecastProvider {
  const events = opts.events ?? [];
  const tickMs = history.tickSeconds * 1000;
  const ticksOf = (s: number) => Math.max(1, Math.round(s / history.tickSeconds));
  const n = ticksOf(LEVEL_WINDOW_SECONDS);
  const calTicks = ticksOf(CALIBRATION_SECONDS);
  const lead = ticksOf(CALIBRATION_LEAD_SECONDS);
  const refresh = ticksOf(opts.refreshSeconds ?? REFRESH_SECONDS);
  const cache = new Map<string, { tick: number; f: PartitionForecast }>();
  const calibrations = new Map<string, Calibration>();

  const tickStart = (tick: number) => history.startMs + tick * tickMs;

  /**
   * History of one range with announced events divided out (so last week's campaign does not come
   * back as a ghost), and the extra load announced events add at a future tick.
   */
  function rangeModel(lo: bigint, hi: bigint) {
    const own = history.series(lo, hi);
    const parts = events
      .filter((e) => e.multiplier > 0 && lo < e.hi && e.lo < hi)
      .map((e) => ({ e, load: history.series(lo > e.lo ? lo : e.lo, hi < e.hi ? hi : e.hi) }));
    const adjustedPart = (p: (typeof parts)[number], tick: number) => {
      let v = p.load(tick);
      const at = tickStart(tick);
      for (const q of parts) if (at >= q.e.startMs && at < q.e.endMs && q.e.lo <= p.e.lo && q.e.hi >= p.e.hi) v /= q.e.multiplier;
      return v;
    };
    return {
      adjusted(tick: number): number {
        let v = own(tick);
        if (parts.length === 0) return v;
        const at = tickStart(tick);
        for (const p of parts) if (at >= p.e.startMs && at < p.e.endMs) v -= p.load(tick) * (1 - 1 / p.e.multiplier);
        return Math.max(0, v);
      },
      boost(tick: number, refTick: number): number {
        if (parts.length === 0) return 0;
        const at = tickStart(tick);
        let extra = 0;
        for (const p of parts) if (at >= p.e.startMs && at < p.e.endMs) extra += adjustedPart(p, refTick) * (p.e.multiplier - 1);
        return extra;
      },
    };
  }
  const D = ticksOf(DAY);
  const W = ticksOf(WEEK);
  /** Which model the history allows: weekly naive (weekday/weekend), daily naive, or persistence. */
  const modeFor = (visible: number): 'weekly' | 'daily' | 'flat' =>
    visible >= W + n + lead + Math.min(calTicks, W) ? 'weekly' : visible >= D + n + lead ? 'daily' : 'flat';

  /**
   * The point model for one range: the value one season back, times a level that makes the last
   * LEVEL_WINDOW match the model (only with a weekly season: against yesterday a level would read
   * a weekend as a trend).
   */
  function pointModel(m: ReturnType<typeof rangeModel>, mode: 'weekly' | 'daily') {
    const S = mode === 'weekly' ? W : D;
    const cache = new Map<number, number>();
    const A = (i: number) => {
      let v = cache.get(i);
      if (v === undefined) {
        v = i < 0 ? 0 : m.adjusted(i);
        cache.set(i, v);
      }
      return v;
    };
    /** Model value at tau seen from origin (ticks before origin are known). */
    const base = (tau: number, origin: number) => {
      let ref = tau - S;
      while (ref >= origin) ref -= S;
      return { ref, value: A(ref) };
    };
    const level = (origin: number) => {
      if (mode !== 'weekly') return 1;
      let num = 0;
      let den = 0;
      for (let i = origin - n; i < origin; i++) {
        num += A(i);
        den += base(i, i).value;
      }
      return den > 0 ? Math.min(LEVEL_MAX, Math.max(LEVEL_MIN, num / den)) : 1;
    };
    return { A, base, level, useLevel: mode === 'weekly' };
  }

  function calibrate(key: string, m: ReturnType<typeof rangeModel>, T: number, mode: ReturnType<typeof modeFor>): Calibration {
    const have = calibrations.get(key);
    if (have && T - have.atTick < ticksOf(RECALIBRATE_SECONDS)) return have;
    const from = Math.max((mode === 'weekly' ? W : D) + n + lead, T - calTicks);
    if (mode === 'flat' || T - from < 12) {
      const c = { atTick: T, ...PRIOR_Q };
      calibrations.set(key, c);
      return c;
    }
    const pm = pointModel(m, mode);
    // Running sums for the level at every origin, instead of re-summing the window each time.
    const lo = from - lead - n;
    const len = T - lo;
    const a = new Float64Array(len + 1);
    const b = new Float64Array(len + 1);
    for (let i = 0; i < len; i++) {
      a[i + 1] = a[i]! + pm.A(lo + i);
      b[i + 1] = b[i]! + pm.base(lo + i, lo + i).value;
    }
    let scale = 0;
    for (let i = from; i < T; i++) scale += pm.A(i);
    const eps = 1e-9 + (0.01 * scale) / Math.max(1, T - from);
    const errs = new Float64Array(T - from);
    let meanRatio = 0;
    for (let tau = from; tau < T; tau++) {
      const origin = tau - lead;
      const num = a[origin - lo]! - a[origin - n - lo]!;
      const den = b[origin - lo]! - b[origin - n - lo]!;
      const level = den > 0 && pm.useLevel ? Math.min(LEVEL_MAX, Math.max(LEVEL_MIN, num / den)) : 1;
      const yhat = pm.base(tau, origin).value * level;
      const e = Math.log((pm.A(tau) + eps) / (yhat + eps));
      errs[tau - from] = e;
      meanRatio += Math.exp(e);
    }
    errs.sort();
    const c: Calibration = {
      atTick: T,
      q10: quantile(errs, 0.1),
      q50: quantile(errs, 0.5),
      q90: quantile(errs, 0.9),
      q99: quantile(errs, 0.99),
      mean: Math.log(meanRatio / errs.length),
    };
    calibrations.set(key, c);
    return c;
  }

  return {
    name: 'seasonal-naive+conformal',
    forecast(req: ForecastRequest): PartitionForecast | undefined {
      const T = history.visibleTicks(req.nowMs);
      if (T <= 0) return undefined;
      const key = `${req.lo}:${req.hi}:${req.stepSeconds}`;
      const hit = cache.get(key);
      if (hit && T - hit.tick < refresh && hit.tick <= T) return { ...hit.f, partitionId: req.partitionId };
      const mode = modeFor(T);
      const r = Math.max(1, Math.round(req.stepSeconds / history.tickSeconds));
      const m = rangeModel(req.lo, req.hi);
      const cal = calibrate(key, m, T, mode);
      const pm = mode === 'flat' ? undefined : pointModel(m, mode);
      let flat = 0;
      if (!pm) {
        const k = Math.min(T, n);
        for (let i = T - k; i < T; i++) flat += m.adjusted(i);
        flat /= k;
      }
      const level = pm ? pm.level(T) : 1;
      const steps: QuantileStep[] = [];
      for (let s = 0; s < req.horizonSteps; s++) {
        let peak = 0;
        let sum = 0;
        for (let j = 0; j < r; j++) {
          const tau = T + s * r + j;
          let y = flat;
          if (pm) {
            const b = pm.base(tau, T);
            y = (b.value + m.boost(tau, b.ref)) * level;
          }
          peak = Math.max(peak, y);
          sum += y;
        }
        const avg = sum / r;
        steps.push({
          mean: avg * Math.exp(cal.mean),
          p10: avg * Math.exp(cal.q10),
          p50: peak * Math.exp(cal.q50),
          p90: peak * Math.exp(cal.q90),
          p99: peak * Math.exp(cal.q99),
        });
      }
      const bytes = history.rangeBytes(req.lo, req.hi);
      const f: PartitionForecast = {
        partitionId: req.partitionId,
        startMs: tickStart(T),
        stepSeconds: r * history.tickSeconds,
        steps,
        sizeBytes: bytes,
        sizeRows: 0,
      };
      cache.set(key, { tick: T, f });
      return f;
    },
  };
}
