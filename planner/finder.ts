// Finder: *where* to split a partition, from load-weighted key samples, so pieces carry equal load.
//
// The recorder samples keys in proportion to the load they carry. Sorted by hash, the samples give
// the partition's cumulative load curve over its hash range; the j-th of k pieces ends where that
// curve reaches j/k of the total. A cut between two adjacent samples goes half way between their
// hashes, so keys the sample did not see fall on either side in proportion. With no usable samples
// the finder falls back to equal hash widths (even rows, not even load) and says so. One key that
// carries more than a piece's share cannot be cut (the same limit CockroachDB has for one hot row):
// the finder then returns fewer pieces and the planner records why.

export interface SplitResult {
  /** Ascending split points strictly inside (lo, hi). */
  points: bigint[];
  /** Share of the partition's load per piece (points.length + 1 entries, summing to 1). */
  shares: number[];
  /** Share of the partition's hash width per piece: the planner's estimate of rows and bytes. */
  widths: number[];
  fromSamples: boolean;
}

export interface WeightedHash {
  hash: bigint;
  weight: number;
}

function widthShares(lo: bigint, hi: bigint, points: bigint[]): number[] {
  const bounds = [lo, ...points, hi];
  const total = Number(hi - lo);
  const out: number[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) out.push(Number(bounds[i + 1]! - bounds[i]!) / total);
  return out;
}

/** Equal-width cut into k pieces. */
export function midpointSplit(lo: bigint, hi: bigint, k: number): SplitResult {
  const points: bigint[] = [];
  const span = hi - lo;
  for (let j = 1; j < k; j++) {
    const p = lo + (span * BigInt(j)) / BigInt(k);
    if (p > lo && p < hi && (points.length === 0 || p > points[points.length - 1]!)) points.push(p);
  }
  const widths = widthShares(lo, hi, points);
  return { points, shares: widths.slice(), widths, fromSamples: false };
}

/** Samples inside [lo, hi) with positive finite weight, merged per hash and sorted. */
export function normalizeSamples(lo: bigint, hi: bigint, samples: readonly WeightedHash[]): WeightedHash[] {
  const byHash = new Map<bigint, number>();
  for (const s of samples) {
    if (s.hash < lo || s.hash >= hi || !(s.weight > 0) || !Number.isFinite(s.weight)) continue;
    byHash.set(s.hash, (byHash.get(s.hash) ?? 0) + s.weight);
  }
  return [...byHash.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([hash, weight]) => ({ hash, weight }));
}

/**
 * Cuts [lo, hi) into up to k pieces of equal sampled load. Returns null when not even two pieces
 * are possible (all load on one key); falls back to equal widths when there are no samples.
 */
export function findSplitPoints(lo: bigint, hi: bigint, samples: readonly WeightedHash[], k: number): SplitResult | null {
  if (k < 2 || hi - lo < 2n) return null;
  const s = normalizeSamples(lo, hi, samples);
  const total = s.reduce((a, x) => a + x.weight, 0);
  if (s.length === 0 || total <= 0) {
    const r = midpointSplit(lo, hi, k);
    return r.points.length ? r : null;
  }
  // prefix[i] = load of samples[0..i-1]; a cut before sample i puts prefix[i] on the left.
  const prefix = new Float64Array(s.length + 1);
  for (let i = 0; i < s.length; i++) prefix[i + 1] = prefix[i]! + s[i]!.weight;
  const cuts: number[] = [];
  let minIdx = 1;
  for (let j = 1; j < k; j++) {
    const target = (total * j) / k;
    // Best cut index i in [minIdx, s.length-1] minimizing |prefix[i] - target|; prefix is monotone.
    let best = -1;
    let bestErr = Infinity;
    for (let i = minIdx; i < s.length; i++) {
      const err = Math.abs(prefix[i]! - target);
      if (err < bestErr) {
        bestErr = err;
        best = i;
      } else if (prefix[i]! > target) break;
    }
    if (best < 0) break;
    cuts.push(best);
    minIdx = best + 1;
  }
  if (cuts.length === 0) return null;
  const points: bigint[] = [];
  for (const i of cuts) {
    const prev = s[i - 1]!.hash;
    const cur = s[i]!.hash;
    points.push(prev + (cur - prev + 1n) / 2n);
  }
  const shares: number[] = [];
  let last = 0;
  for (const i of cuts) {
    shares.push((prefix[i]! - prefix[last]!) / total);
    last = i;
  }
  shares.push((total - prefix[last]!) / total);
  return { points, shares, widths: widthShares(lo, hi, points), fromSamples: true };
}
