// Season detection by autocorrelation: which cycle lengths (in steps) the series repeats with.
//
// Algorithm: remove a linear trend (growth would make every lag look correlated), compute the
// autocorrelation function up to half the history, and take as the primary season the first lag
// that is a clear local peak (ACF above MIN_PEAK_ACF and at least MIN_PEAK_PROMINENCE above the
// trough before it). A longer season is then looked for among multiples of the primary: the
// shortest multiple j·p whose ACF exceeds both neighbouring multiples (j±1)·p by SECONDARY_MARGIN
// is a second season (a week over a day, because weekends differ). At least MIN_CYCLES full cycles are required for either.

const MIN_PEAK_ACF = 0.25;
const MIN_PEAK_PROMINENCE = 0.1;
const SECONDARY_MARGIN = 0.03;
const MIN_CYCLES = 2;
/** No point looking for cycles longer than this many steps (five weeks of hourly data). */
const MAX_LAG = 840;
/** Shortest season worth modelling, in steps. */
const MIN_SEASON = 3;
/** Share of values clipped at each tail before the ACF. */
const WINSOR = 0.02;

export function acf(y: ArrayLike<number>, maxLag: number): Float64Array {
  const n = y.length;
  // Linear detrend by least squares over the index.
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (let i = 0; i < n; i++) { sx += i; sy += y[i]!; sxx += i * i; sxy += i * y[i]!; }
  const den = n * sxx - sx * sx;
  const b = den !== 0 ? (n * sxy - sx * sy) / den : 0;
  const a = (sy - b * sx) / Math.max(n, 1);
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) r[i] = y[i]! - (a + b * i);
  // Winsorize: a few flash crowds must not decide which lags look alike.
  const sorted = Float64Array.from(r).sort();
  const lo = sorted[Math.floor(WINSOR * (n - 1))] ?? 0, hi = sorted[Math.ceil((1 - WINSOR) * (n - 1))] ?? 0;
  let mu = 0;
  for (let i = 0; i < n; i++) { r[i] = Math.min(hi, Math.max(lo, r[i]!)); mu += r[i]!; }
  mu /= Math.max(1, n);
  for (let i = 0; i < n; i++) r[i] = r[i]! - mu;
  let c0 = 0;
  for (let i = 0; i < n; i++) c0 += r[i]! * r[i]!;
  const out = new Float64Array(maxLag + 1);
  if (c0 <= 1e-12) return out;
  out[0] = 1;
  for (let k = 1; k <= maxLag; k++) {
    let c = 0;
    for (let i = k; i < n; i++) c += r[i]! * r[i - k]!;
    out[k] = c / c0;
  }
  return out;
}

export interface SeasonReport {
  /** Detected seasons in steps, shortest first (zero, one or two entries). */
  seasons: number[];
  /** ACF value at each detected season, same order. */
  strength: number[];
}

export function detectSeasons(y: ArrayLike<number>): SeasonReport {
  const n = y.length;
  const maxLag = Math.min(MAX_LAG, Math.floor(n / MIN_CYCLES));
  if (maxLag < MIN_SEASON + 2) return { seasons: [], strength: [] };
  const r = acf(y, maxLag);
  let primary = 0;
  let trough = 1;
  for (let k = 1; k < maxLag - 1; k++) {
    trough = Math.min(trough, r[k]!);
    if (k < MIN_SEASON) continue;
    const lo = Math.max(1, k - 2), hi = Math.min(maxLag, k + 2);
    let isPeak = true;
    for (let j = lo; j <= hi; j++) if (j !== k && r[j]! > r[k]!) { isPeak = false; break; }
    if (isPeak && r[k]! >= MIN_PEAK_ACF && r[k]! - trough >= MIN_PEAK_PROMINENCE) { primary = k; break; }
  }
  if (primary === 0) return { seasons: [], strength: [] };
  // A longer season shows as a peak *among the multiples* of the primary: with only the primary
  // season the ACF at 2p, 3p, … just decays, with a week over a day the ACF at 7p stands out.
  const seasons = [primary];
  const strength = [r[primary]!];
  let best = 0;
  for (let j = 2; (j + 1) * primary <= maxLag; j++) {
    const k = j * primary;
    const prom = r[k]! - Math.max(r[k - primary]!, r[k + primary]!);
    // The shortest such multiple: two weeks stand out too, but only because one week does.
    if (r[k]! >= MIN_PEAK_ACF && prom > SECONDARY_MARGIN) { best = k; break; }
  }
  const bestAcf = best > 0 ? r[best]! : 0;
  if (best > 0) { seasons.push(best); strength.push(bestAcf); }
  return { seasons, strength };
}
