// Prediction intervals by split conformal calibration on backtest residuals, with adaptive levels.
//
// Algorithm: for every horizon step k, the rolling-origin backtest gives residuals of the point
// forecast at many origins. Each residual is normalized by the forecast's own scale,
//   s = (y − ŷ) / (ŷ + s0),   s0 = SCALE_FLOOR × mean load,
// because load errors grow with load (a 10× peak has 10× the error of the trough) and a floor
// keeps near-zero forecasts from exploding the ratio. The quantile p of the interval is
// ŷ + Q_p(s)·(ŷ + s0): one-sided empirical quantiles, so skewed errors give skewed intervals.
// Coverage drift: adaptive conformal inference (Gibbs & Candès 2021) replays the residuals in time
// order, checks each against the quantile at the current level p_t and moves p_t by
// γ·(miss − (1 − p)); the level reached at the end is used for the forecast, so a recent stretch of
// misses widens the interval and a quiet stretch narrows it. Steps with too few residuals borrow
// those of neighbouring steps.
// Tails: beyond TAIL_LEVEL (p < 0.05 or p > 0.95) a few hundred residuals rarely hold the rare
// jumps (a hot key set moving, a level shift) that decide those quantiles, so the empirical
// quantile is mixed with one of an asymmetric Laplace fitted to the same residuals (median plus
// the mean excess on each side; exponential tails): offset = (1 − TAIL_MIX)·empirical + TAIL_MIX·max(empirical, Laplace)
// on the upper side, mirrored below. It only ever widens, and only the outer levels.

import { sortedQuantile } from './series.js';

/** Relative floor of the residual scale, as a fraction of the mean load. */
export const SCALE_FLOOR = 0.2;
/** ACI step size per residual. */
export const ACI_GAMMA = 0.005;
/** The adapted level stays within this distance of the nominal one. */
export const ACI_MAX_SHIFT = 0.12;
/** Levels this far from 0 or 1 (or further) get the heavier-tailed mixture. */
export const TAIL_LEVEL = 0.05;
/** Weight of the Laplace tail quantile in the mixture (0: empirical only). */
export const TAIL_MIX = 0.5;
/** Fewest residuals a horizon step is calibrated on before it borrows from its neighbours. */
export const MIN_POOL = 60;

export interface Calibration {
  /** offsets[k][j]: normalized residual quantile for step k and level j. */
  offsets: number[][];
  /** adapted levels actually used, levels[k][j]. */
  adapted: number[][];
  /** residual count per step. */
  counts: number[];
}

/**
 * scores[k] holds the normalized residuals of step k in time order (oldest first).
 */
export function calibrate(scores: readonly (readonly number[])[], levels: readonly number[]): Calibration {
  const H = scores.length;
  const offsets: number[][] = [];
  const adapted: number[][] = [];
  const counts: number[] = [];
  for (let k = 0; k < H; k++) {
    let pool: number[] = [...scores[k]!];
    for (let r = 1; pool.length < MIN_POOL && (k - r >= 0 || k + r < H); r++) {
      if (k - r >= 0) pool = pool.concat(scores[k - r]!);
      if (k + r < H) pool = pool.concat(scores[k + r]!);
    }
    counts.push(pool.length);
    if (pool.length === 0) {
      offsets.push(levels.map(() => 0));
      adapted.push([...levels]);
      continue;
    }
    const ordered = scores[k]!.length >= MIN_POOL / 2 ? scores[k]! : pool;
    const sorted = Float64Array.from(pool).sort();
    const row: number[] = [];
    const arow: number[] = [];
    for (const p of levels) {
      const lo = Math.max(0.0005, p - ACI_MAX_SHIFT), hi = Math.min(0.9995, p + ACI_MAX_SHIFT);
      let pt = p;
      for (const s of ordered) {
        const q = sortedQuantile(sorted, pt);
        const miss = s > q ? 1 : 0;
        pt = Math.min(hi, Math.max(lo, pt + ACI_GAMMA * (miss - (1 - p))));
      }
      // Finite-sample correction of split conformal: the (n+1)-th point is the one to cover.
      const n = sorted.length;
      const pc = p >= 0.5 ? Math.min(0.9995, pt * (n + 1) / n) : Math.max(0.0005, (pt * (n + 1) - 1) / n);
      row.push(tailQuantile(sorted, p, pc));
      arow.push(pc);
    }
    offsets.push(row);
    adapted.push(arow);
  }
  return { offsets, adapted, counts };
}

/**
 * The offset for nominal level p (adapted level pc) from sorted residuals: the empirical quantile,
 * widened in the tails towards an asymmetric Laplace fitted to the residuals (see the header).
 */
export function tailQuantile(sorted: ArrayLike<number>, p: number, pc: number): number {
  const emp = sortedQuantile(sorted, pc);
  if (p >= TAIL_LEVEL && p <= 1 - TAIL_LEVEL) return emp;
  const n = sorted.length;
  const med = sortedQuantile(sorted, 0.5);
  let up = 0;
  let down = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i]!;
    if (v > med) up += v - med;
    else down += med - v;
  }
  // Asymmetric Laplace: half the mass on each side of the median, exponential with mean excess b.
  const bUp = (2 * up) / n;
  const bDown = (2 * down) / n;
  const lap = p > 0.5 ? med + bUp * Math.log(1 / (2 * (1 - pc))) : med - bDown * Math.log(1 / (2 * pc));
  const wide = p > 0.5 ? Math.max(emp, lap) : Math.min(emp, lap);
  return (1 - TAIL_MIX) * emp + TAIL_MIX * wide;
}

/** Turns a point forecast and offsets into monotone, non-negative quantiles. */
export function applyOffsets(point: number, scale: number, offsets: readonly number[], levels: readonly number[]): number[] {
  const order = levels.map((_, i) => i).sort((a, b) => levels[a]! - levels[b]!);
  const out = new Array<number>(levels.length);
  let prev = 0;
  for (const i of order) {
    const v = Math.max(0, point + offsets[i]! * scale, prev);
    out[i] = v;
    prev = v;
  }
  return out;
}
