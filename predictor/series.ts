// Series helpers: gap filling for fitting, robust statistics and a seeded RNG shared by the models.

/** Result of preparing raw values for fitting. */
export interface CleanSeries {
  y: Float64Array;
  /** true where the value was missing and was interpolated. */
  missing: Uint8Array;
  missingCount: number;
  notes: string[];
}

/**
 * Fills gaps by linear interpolation between the nearest known values (the models need a regular
 * grid); leading and trailing gaps take the nearest known value. Negative values are clamped to 0
 * because load cannot be negative. A series with no known value becomes all zeros, with a note.
 */
export function cleanValues(values: readonly (number | null)[]): CleanSeries {
  const n = values.length;
  const y = new Float64Array(n);
  const missing = new Uint8Array(n);
  const notes: string[] = [];
  let missingCount = 0;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      missing[i] = 1;
      missingCount++;
      continue;
    }
    y[i] = Math.max(0, v);
    if (prev < 0) {
      for (let j = 0; j < i; j++) y[j] = y[i]!;
    } else if (prev < i - 1) {
      const a = y[prev]!, b = y[i]!;
      for (let j = prev + 1; j < i; j++) y[j] = a + ((b - a) * (j - prev)) / (i - prev);
    }
    prev = i;
  }
  if (prev < 0) {
    if (n > 0) notes.push('no known values: treated as all zero');
  } else {
    for (let j = prev + 1; j < n; j++) y[j] = y[prev]!;
  }
  if (missingCount > 0 && prev >= 0) {
    notes.push(`${missingCount} missing interval(s) interpolated for fitting`);
  }
  if (values.some((v) => v !== null && v !== undefined && Number.isFinite(v) && v < 0)) {
    notes.push('negative values clamped to 0');
  }
  return { y, missing, missingCount, notes };
}

export function mean(a: ArrayLike<number>, from = 0, to = a.length): number {
  if (to <= from) return 0;
  let s = 0;
  for (let i = from; i < to; i++) s += a[i]!;
  return s / (to - from);
}

/** Quantile by linear interpolation of a *sorted* array. */
export function sortedQuantile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  if (p <= 0) return sorted[0]!;
  if (p >= 1) return sorted[n - 1]!;
  const x = p * (n - 1);
  const i = Math.floor(x);
  const f = x - i;
  return i + 1 < n ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

export function median(a: ArrayLike<number>): number {
  const s = Float64Array.from(a as ArrayLike<number>).sort();
  return sortedQuantile(s, 0.5);
}

/** Mulberry32: small, fast, seedable; good enough for sampling training windows. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draw from a uniform RNG (Box–Muller). */
export function gaussian(rng: () => number): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - pl) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}
