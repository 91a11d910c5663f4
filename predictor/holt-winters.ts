// Holt-Winters exponential smoothing with up to two seasons (Taylor 2003), damped trend, AR(1) errors.
//
// Algorithm (error-correction form, on z = y or z = log(y + c)):
//   ẑ_t = l + φ·b + d[t mod m1] + w[t mod m2],   e = z_t − ẑ_t
//   l ← l + φ·b + α·e;  b ← φ·b + α·β·e;  d[t mod m1] += δ·e;  w[t mod m2] += ω·e
// The k-step forecast adds b·(φ + … + φ^k) and ρ^k·e_last (Taylor's AR(1) correction of the
// one-step errors, which is most of the gain at short horizons). The log variant makes the seasons
// multiplicative (a 10× peak/trough with growth) and keeps forecasts ≥ 0; the raw variant copes
// with series that sit at zero. Which variant and which (α, ρ, β, δ, ω) is chosen by minimizing
// the absolute error on the fit window at lead times 1, m1/4 and m1 steps (one-step error alone
// favours a jumpy level that hurts a day ahead), by coordinate descent over small grids: ~100
// filter passes, tens of milliseconds for 4,000 points.
// Robustness: an error larger than CLIP_SIGMAS running mean-absolute-errors is clipped before it
// updates the state (a flash crowd must not be learned as the new normal), unless CLIP_RUN errors
// in a row are clipped with the same sign: that is a level shift, and the level jumps by their mean.

import type { PointModel } from './point-model.js';
import { mean } from './series.js';

const ALPHAS = [0.01, 0.03, 0.1, 0.2, 0.4, 0.7];
const BETAS = [0, 0.01, 0.05];
const SEASON_GAINS = [0, 0.02, 0.05, 0.1, 0.2, 0.4];
/** Trend damping per step: a trend fades over ~50 steps rather than running away. */
const PHI = 0.98;
const CLIP_SIGMAS = 3.5;
/** Longer than a flash crowd (a few hours), shorter than it takes to notice a real shift. */
const CLIP_RUN = 8;
/** EWMA weight of the running mean absolute one-step error. */
const SIGMA_GAIN = 0.05;
const DESCENT_ROUNDS = 2;
const RHOS = [0, 0.3, 0.5, 0.7, 0.85];

export interface HwParams {
  alpha: number;
  /** AR(1) coefficient of the smoothing errors. */
  rho: number;
  beta: number;
  delta: number;
  omega: number;
  log: boolean;
}

interface RunResult {
  mae: number;
  /** lag-1 autocorrelation of one-step errors in z space. */
  rho: number;
}

export class HoltWinters implements PointModel {
  readonly name = 'hw';
  params: HwParams = { alpha: 0.1, rho: 0, beta: 0, delta: 0.1, omega: 0.1, log: false };
  private m1 = 0;
  private m2 = 0;
  private c = 1;
  private fitEnd = 0;

  /** Human-readable fitted parameters, for notes. */
  describe(): string {
    const p = this.params;
    const seasons = [this.m1, this.m2].filter((m) => m > 0).join('+') || 'none';
    return `hw seasons=${seasons} ${p.log ? 'log' : 'raw'} α=${p.alpha} β=${p.beta} δ=${p.delta} ω=${p.omega} ρ=${p.rho}`;
  }

  fit(y: Float64Array, fitEnd: number, seasons: readonly number[]): void {
    this.fitEnd = fitEnd;
    const ss = [...seasons].sort((a, b) => a - b);
    this.m1 = ss[0] !== undefined && fitEnd >= 2 * ss[0] ? ss[0] : 0;
    this.m2 = ss[1] !== undefined && this.m1 > 0 && fitEnd >= 2 * ss[1] ? ss[1] : 0;
    const mu = mean(y, 0, fitEnd);
    this.c = Math.max(0.1 * mu, 1e-6);
    let best: { p: HwParams; r: RunResult } | undefined;
    for (const log of mu > 0 ? [true, false] : [false]) {
      let p: HwParams = { alpha: 0.1, rho: 0.5, beta: 0, delta: this.m1 ? 0.1 : 0, omega: this.m2 ? 0.1 : 0, log };
      let r = this.run(y, fitEnd, p);
      for (let round = 0; round < DESCENT_ROUNDS; round++) {
        const keys: [keyof HwParams, number[]][] = [['alpha', ALPHAS], ['rho', RHOS], ['beta', BETAS]];
        if (this.m1) keys.push(['delta', SEASON_GAINS]);
        if (this.m2) keys.push(['omega', SEASON_GAINS]);
        for (const [key, grid] of keys) {
          for (const v of grid) {
            if (p[key] === v) continue;
            const q = { ...p, [key]: v };
            const rq = this.run(y, fitEnd, q);
            if (rq.mae < r.mae - 1e-12) { p = q; r = rq; }
          }
        }
      }
      if (!best || r.mae < best.r.mae) best = { p, r };
    }
    this.params = best!.p;
  }

  forecastFrom(y: Float64Array, origins: readonly number[], h: number): Float64Array[] {
    const out = new Map<number, Float64Array>();
    this.run(y, this.fitEnd, this.params, origins, h, out);
    return origins.map((o) => out.get(o)!);
  }

  /**
   * One filter pass over y. Errors before `end` (after the initialization window) form the fit
   * objective; the pass continues to the last origin, emitting forecasts at each.
   */
  private run(
    y: Float64Array, end: number, p: HwParams,
    origins?: readonly number[], h = 0, out?: Map<number, Float64Array>,
  ): RunResult {
    const { m1, m2, c } = this;
    const log = p.log;
    const fwd = (v: number): number => (log ? Math.log(v + c) : v);
    const inv = (v: number): number => Math.max(0, log ? Math.exp(v) - c : v);
    const period = m2 || m1 || 1;
    const cycles = Math.max(1, Math.min(2, Math.floor(end / period)));
    const initLen = Math.min(end, period * cycles);
    // Initial state from the first cycles: level, one seasonal profile split into day and week.
    let l = 0;
    for (let i = 0; i < initLen; i++) l += fwd(y[i]!);
    l /= Math.max(1, initLen);
    const prof = new Float64Array(period);
    if (m1) {
      for (let j = 0; j < period; j++) {
        let s = 0, k = 0;
        for (let i = j; i < initLen; i += period) { s += fwd(y[i]!) - l; k++; }
        prof[j] = k ? s / k : 0;
      }
    }
    const d = new Float64Array(Math.max(m1, 1));
    const w = new Float64Array(Math.max(m2, 1));
    if (m1 && m2 && m2 % m1 === 0) {
      for (let i = 0; i < m1; i++) {
        let s = 0;
        for (let j = i; j < m2; j += m1) s += prof[j]!;
        d[i] = s / (m2 / m1);
      }
      for (let j = 0; j < m2; j++) w[j] = prof[j]! - d[j % m1]!;
    } else if (m1) {
      for (let i = 0; i < m1; i++) d[i] = prof[i]!;
    }
    let b = 0;
    if (cycles >= 2) {
      let a1 = 0, a2 = 0;
      for (let i = 0; i < period; i++) { a1 += fwd(y[i]!); a2 += fwd(y[i + period]!); }
      b = (a2 - a1) / period / period;
    }
    let sigma = 0;
    for (let i = 1; i < initLen; i++) sigma += Math.abs(fwd(y[i]!) - fwd(y[i - 1]!));
    sigma = initLen > 1 ? sigma / (initLen - 1) : Math.abs(l) * 0.1 + 1e-9;
    if (sigma <= 0) sigma = 1e-9;

    const want = origins && out ? new Set(origins) : undefined;
    const last = origins && origins.length ? Math.max(...origins) : end;
    const stop = Math.min(y.length, Math.max(end, last));
    // Objective: mean absolute error at a few lead times, not only one step ahead, because the
    // forecasts are used up to a day or two out; pending[j] holds forecasts made LEADS[j] steps ago.
    const leads = m1 ? [1, Math.max(2, Math.round(m1 / 4)), m1] : [1, 6, 24];
    const pending = leads.map((K) => new Float64Array(K));
    const absSumK = leads.map(() => 0), absNK = leads.map(() => 0);
    let e1 = 0, eSumXY = 0, eSumXX = 0;
    let clipRun = 0, clipSign = 0, runSum = 0;
    let eLast = 0;
    const rho = p.rho;
    for (let t = 0; t <= stop; t++) {
      if (want && want.has(t)) {
        const f = new Float64Array(h);
        let bs = 0, phik = 1, rk = 1;
        for (let k = 0; k < h; k++) {
          phik *= PHI;
          bs += phik;
          rk *= rho;
          const zf = l + b * bs + (m1 ? d[(t + k) % m1]! : 0) + (m2 ? w[(t + k) % m2]! : 0) + rk * eLast;
          f[k] = inv(zf);
        }
        out!.set(t, f);
      }
      if (t >= stop) break;
      const sd = m1 ? d[t % m1]! : 0;
      const sw = m2 ? w[t % m2]! : 0;
      const pred = l + PHI * b + sd + sw;
      const z = fwd(y[t]!);
      if (t < end) {
        for (let j = 0; j < leads.length; j++) {
          const K = leads[j]!;
          if (t - K >= initLen) { absSumK[j] += Math.abs(y[t]! - inv(pending[j]![t % K]!)); absNK[j]++; }
        }
      }
      // Taylor's AR(1) on the errors: ε = e − ρ·e_prev is the surprise; the state learns only that.
      const e = z - pred - rho * eLast;
      let eu = e;
      const lim = CLIP_SIGMAS * sigma;
      if (t >= initLen && Math.abs(e) > lim) {
        const sg = Math.sign(e);
        if (sg === clipSign) { clipRun++; runSum += e; } else { clipRun = 1; runSum = e; }
        clipSign = sg;
        eu = sg * lim;
        if (clipRun >= CLIP_RUN) {
          // A level shift, not a burst: move the level by the run's mean surprise at once (a small
          // α would otherwise take hundreds of steps to get there) and forget the run.
          l += runSum / clipRun - eu;
          eLast = 0;
          clipRun = 0; clipSign = 0; runSum = 0;
        }
      } else {
        clipRun = 0; clipSign = 0; runSum = 0;
      }
      sigma = (1 - SIGMA_GAIN) * sigma + SIGMA_GAIN * Math.min(Math.abs(e), lim);
      if (t >= initLen && t < end) {
        eSumXY += eu * e1;
        eSumXX += eu * eu;
      }
      e1 = eu;
      // A clipped surprise must not feed the AR term either.
      eLast = eu !== e ? eu + rho * eLast : z - pred;
      l = l + PHI * b + p.alpha * eu;
      b = PHI * b + p.alpha * p.beta * eu;
      if (m1) d[t % m1] = sd + p.delta * eu;
      if (m2) w[t % m2] = sw + p.omega * eu;
      if (t + 1 < end && t + 1 >= initLen - leads[leads.length - 1]!) {
        for (let j = 0; j < leads.length; j++) {
          const K = leads[j]!;
          let bs = 0, phik = 1;
          for (let i = 0; i < K; i++) { phik *= PHI; bs += phik; }
          pending[j]![(t + K) % K] = l + b * bs + (m1 ? d[(t + K) % m1]! : 0) + (m2 ? w[(t + K) % m2]! : 0) + rho ** K * eLast;
        }
      }
    }
    let mae = 0;
    for (let j = 0; j < leads.length; j++) mae += absNK[j]! ? absSumK[j]! / absNK[j]! : 0;
    return { mae: mae / leads.length, rho: eSumXX > 0 ? eSumXY / eSumXX : 0 };
  }
}
