// Holt-Winters exponential smoothing with up to two seasons (Taylor 2003), damped trend, AR(1) errors.
//
// Algorithm (error-correction form, on z = y or z = log(y + c)):
//   ẑ_t = l + φ·b + d[t mod m1] + w[t mod m2],   e = z_t − ẑ_t
//   l ← l + φ·b + α·e;  b ← φ·b + α·β·e;  d[t mod m1] += δ·e;  w[t mod m2] += ω·e
// The k-step forecast adds b·(φ + … + φ^k) and ρ^k·e_last (Taylor's AR(1) correction of the
// one-step errors, which is most of the gain at short horizons). The log variant makes the seasons
// multiplicative (a 10× peak/trough with growth) and keeps forecasts ≥ 0; the raw variant copes
// with series that sit at zero. Which variant and which (α, β, δ, ω) is chosen by minimizing the
// one-step absolute error on the fit window by coordinate descent over small grids: ~80 filter
// passes, a few milliseconds for 4,000 points.
// Robustness: an error larger than CLIP_SIGMAS running mean-absolute-errors is clipped before it
// updates the state (a flash crowd must not be learned as the new normal), unless CLIP_RUN errors
// in a row are clipped with the same sign, which is a level shift and is then let through.

import type { PointModel } from './point-model.js';
import { mean } from './series.js';

const ALPHAS = [0.01, 0.03, 0.1, 0.2, 0.4, 0.7];
const BETAS = [0, 0.01, 0.05];
const SEASON_GAINS = [0, 0.02, 0.05, 0.1, 0.2, 0.4];
/** Trend damping per step: a trend fades over ~50 steps rather than running away. */
const PHI = 0.98;
const CLIP_SIGMAS = 4;
const CLIP_RUN = 3;
/** EWMA weight of the running mean absolute one-step error. */
const SIGMA_GAIN = 0.05;
const DESCENT_ROUNDS = 2;

export interface HwParams {
  alpha: number;
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
  params: HwParams = { alpha: 0.1, beta: 0, delta: 0.1, omega: 0.1, log: false };
  rho = 0;
  private m1 = 0;
  private m2 = 0;
  private c = 1;
  private fitEnd = 0;

  /** Human-readable fitted parameters, for notes. */
  describe(): string {
    const p = this.params;
    const seasons = [this.m1, this.m2].filter((m) => m > 0).join('+') || 'none';
    return `hw seasons=${seasons} ${p.log ? 'log' : 'raw'} α=${p.alpha} β=${p.beta} δ=${p.delta} ω=${p.omega} ρ=${this.rho.toFixed(2)}`;
  }

  fit(y: Float64Array, fitEnd: number, seasons: readonly number[]): void {
    this.fitEnd = fitEnd;
    this.rho = 0; // the AR correction is estimated after the smoothing parameters
    const ss = [...seasons].sort((a, b) => a - b);
    this.m1 = ss[0] !== undefined && fitEnd >= 2 * ss[0] ? ss[0] : 0;
    this.m2 = ss[1] !== undefined && this.m1 > 0 && fitEnd >= 2 * ss[1] ? ss[1] : 0;
    const mu = mean(y, 0, fitEnd);
    this.c = Math.max(0.1 * mu, 1e-6);
    let best: { p: HwParams; r: RunResult } | undefined;
    for (const log of mu > 0 ? [true, false] : [false]) {
      let p: HwParams = { alpha: 0.1, beta: 0, delta: this.m1 ? 0.1 : 0, omega: this.m2 ? 0.1 : 0, log };
      let r = this.run(y, fitEnd, p);
      for (let round = 0; round < DESCENT_ROUNDS; round++) {
        const keys: [keyof HwParams, number[]][] = [['alpha', ALPHAS], ['beta', BETAS]];
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
    this.rho = Math.min(0.95, Math.max(0, best!.r.rho));
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
    let absSum = 0, absN = 0;
    let e1 = 0, eSumXY = 0, eSumXX = 0;
    let clipRun = 0, clipSign = 0;
    let eLast = 0;
    const rho = this.rho;
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
      const e = z - pred;
      let eu = e;
      const lim = CLIP_SIGMAS * sigma;
      if (t >= initLen && Math.abs(e) > lim) {
        const sg = Math.sign(e);
        clipRun = sg === clipSign ? clipRun + 1 : 1;
        clipSign = sg;
        if (clipRun <= CLIP_RUN) eu = sg * lim;
        else sigma = Math.max(sigma, Math.abs(e) / CLIP_SIGMAS); // a shift: let it in
      } else {
        clipRun = 0;
      }
      sigma = (1 - SIGMA_GAIN) * sigma + SIGMA_GAIN * Math.min(Math.abs(e), lim);
      if (t >= initLen && t < end) {
        absSum += Math.abs(y[t]! - inv(pred));
        absN++;
        eSumXY += eu * e1;
        eSumXX += eu * eu;
      }
      e1 = eu;
      eLast = eu;
      l = l + PHI * b + p.alpha * eu;
      b = PHI * b + p.alpha * p.beta * eu;
      if (m1) d[t % m1] = sd + p.delta * eu;
      if (m2) w[t % m2] = sw + p.omega * eu;
    }
    return { mae: absN ? absSum / absN : 0, rho: eSumXX > 0 ? eSumXY / eSumXX : 0 };
  }
}
