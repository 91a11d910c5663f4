// Growth and size: rows/bytes per partition at the horizon end, and the partition/server counts to ask for.
//
// Size forecast: Holt's linear method with a damped trend (φ = SIZE_PHI per step) on the size
// series, α and β chosen on a small grid by one-step absolute error; the p90 comes from the
// relative errors of horizon-step forecasts made at rolling origins over the last third of the
// history (the same split-conformal idea as the load intervals). Sizes only shrink when data is
// deleted, so the forecast never goes below zero.
// Recommendation (per table): each partition needs ⌈p90 peak load / max load per partition⌉ and
// ⌈size at horizon / max size per partition⌉ pieces (at least one), so skew is respected: a hot
// partition asks for splits, a cold one does not. Servers: ⌈Σ p90 peak load / max load per shard⌉
// and ⌈Σ size / max bytes per shard⌉. Summing per-partition p90s overstates the p90 of the sum,
// which errs on the side of capacity; the reasons list says which threshold decided.

import { cleanValues } from './series.js';
import { quantileKey, startMs, type Forecast, type Series } from './types.js';

const SIZE_PHI = 0.995;
const SIZE_ALPHAS = [0.1, 0.3, 0.6, 0.9];
const SIZE_BETAS = [0.01, 0.05, 0.2];

export interface SizeForecast {
  /** Point forecast at each step after the history. */
  steps: number[];
  atHorizon: number;
  p90AtHorizon: number;
  notes: string[];
}

function holt(y: Float64Array, end: number, alpha: number, beta: number, origins?: Set<number>, h = 0, out?: Map<number, number>): number {
  let l = y[0]!, b = end > 1 ? y[1]! - y[0]! : 0, err = 0;
  for (let t = 1; t <= end; t++) {
    if (origins?.has(t)) {
      let bs = 0, ph = 1;
      for (let k = 0; k < h; k++) { ph *= SIZE_PHI; bs += ph; }
      out!.set(t, Math.max(0, l + b * bs));
    }
    if (t === end) break;
    const pred = l + SIZE_PHI * b;
    const e = y[t]! - pred;
    err += Math.abs(e);
    l = pred + alpha * e;
    b = SIZE_PHI * b + alpha * beta * e;
  }
  return err;
}

export function forecastSize(series: Series, horizon: number): SizeForecast {
  const { y, notes } = cleanValues(series.values);
  const n = y.length;
  if (n === 0) return { steps: Array(horizon).fill(0), atHorizon: 0, p90AtHorizon: 0, notes: [...notes, 'no size history: 0'] };
  if (n < 3) {
    const v = y[n - 1]!;
    return { steps: Array(horizon).fill(v), atHorizon: v, p90AtHorizon: v, notes: [...notes, 'too little size history: last value'] };
  }
  let best = { a: 0.3, b: 0.05, err: Infinity };
  for (const a of SIZE_ALPHAS) for (const b of SIZE_BETAS) {
    const err = holt(y, n, a, b);
    if (err < best.err) best = { a, b, err };
  }
  const out = new Map<number, number>();
  holt(y, n, best.a, best.b, new Set([n]), horizon, out);
  const steps: number[] = [];
  {
    const m = new Map<number, number>();
    for (let k = 1; k <= horizon; k++) { holt(y, n, best.a, best.b, new Set([n]), k, m); steps.push(m.get(n)!); }
  }
  const atHorizon = steps[steps.length - 1] ?? y[n - 1]!;
  // Relative errors of horizon-step forecasts from origins in the last third.
  const rel: number[] = [];
  const origins = new Set<number>();
  for (let o = Math.max(2, Math.floor(n * 2 / 3)); o + horizon <= n; o++) origins.add(o);
  if (origins.size) {
    const m = new Map<number, number>();
    holt(y, n, best.a, best.b, origins, horizon, m);
    for (const [o, f] of m) rel.push((y[o + horizon - 1]! - f) / Math.max(f, 1e-9));
  }
  rel.sort((a, b) => a - b);
  const q90 = rel.length ? rel[Math.min(rel.length - 1, Math.ceil(0.9 * (rel.length + 1)) - 1)]! : 0.1;
  if (!rel.length) notes.push('size p90 not calibrated (history shorter than the horizon): +10 %');
  return { steps, atHorizon, p90AtHorizon: Math.max(atHorizon, atHorizon * (1 + q90)), notes };
}

export interface PartitionLoad {
  table: string;
  partition: string | number;
  forecast: Forecast;
}

export interface PartitionSize {
  table: string;
  partition: string | number;
  /** Expected bytes at the horizon end (use forecastSize(...).p90AtHorizon to be safe). */
  bytes: number;
  rows?: number;
}

export interface Thresholds {
  maxLoadPerPartition: number;
  maxLoadPerShard: number;
  maxBytesPerPartition: number;
  maxBytesPerShard?: number;
  /** Quantile of the load forecast to plan for (default 0.9). */
  quantile?: number;
}

export interface TableRecommendation {
  table: string;
  currentPartitions: number;
  partitions: number;
  servers: number;
  peakLoad: number;
  bytes: number;
  reasons: string[];
}

export interface Recommendation {
  tables: TableRecommendation[];
  /** Servers for all the tables together. */
  servers: number;
  reasons: string[];
}

/** Planning load of one partition's forecast: the peak over the horizon of the chosen quantile. */
function peakOf(f: Forecast, q: number): number {
  let peak = 0;
  const key = quantileKey(q);
  for (const s of f.steps) {
    let v = s.quantiles[key];
    if (v === undefined) {
      // The nearest level at or above q, else the mean: never plan below what was asked.
      const above = Object.keys(s.quantiles).map(Number).filter((l) => l >= q).sort((a, b) => a - b)[0];
      v = above !== undefined ? s.quantiles[quantileKey(above)]! : s.mean;
    }
    peak = Math.max(peak, v);
  }
  return peak;
}

export function recommend(input: { forecasts: readonly PartitionLoad[]; sizes: readonly PartitionSize[]; thresholds: Thresholds }): Recommendation {
  const { forecasts, sizes, thresholds: th } = input;
  const q = th.quantile ?? 0.9;
  const tables = new Map<string, { loads: Map<string, number>; bytes: Map<string, number> }>();
  const get = (t: string): { loads: Map<string, number>; bytes: Map<string, number> } => {
    let e = tables.get(t);
    if (!e) { e = { loads: new Map(), bytes: new Map() }; tables.set(t, e); }
    return e;
  };
  for (const f of forecasts) get(f.table).loads.set(String(f.partition), peakOf(f.forecast, q));
  for (const s of sizes) get(s.table).bytes.set(String(s.partition), Math.max(0, s.bytes));
  const out: TableRecommendation[] = [];
  let totalLoad = 0, totalBytes = 0;
  for (const [table, e] of [...tables].sort(([a], [b]) => a.localeCompare(b))) {
    const parts = new Set([...e.loads.keys(), ...e.bytes.keys()]);
    let partitions = 0, peak = 0, bytes = 0, byLoad = 0, bySize = 0;
    for (const p of parts) {
      const l = e.loads.get(p) ?? 0, b = e.bytes.get(p) ?? 0;
      const nl = Math.ceil(l / th.maxLoadPerPartition), nb = Math.ceil(b / th.maxBytesPerPartition);
      partitions += Math.max(1, nl, nb);
      if (nl > 1 && nl >= nb) byLoad++;
      if (nb > 1 && nb > nl) bySize++;
      peak += l; bytes += b;
    }
    const sLoad = Math.ceil(peak / th.maxLoadPerShard);
    const sBytes = th.maxBytesPerShard ? Math.ceil(bytes / th.maxBytesPerShard) : 0;
    const servers = Math.max(1, sLoad, sBytes);
    const reasons: string[] = [];
    if (byLoad) reasons.push(`${byLoad} partition(s) over ${th.maxLoadPerPartition} load at p${Math.round(q * 100)}: split`);
    if (bySize) reasons.push(`${bySize} partition(s) over ${th.maxBytesPerPartition} bytes at horizon end: split`);
    if (!byLoad && !bySize) reasons.push('every partition stays under the thresholds');
    reasons.push(servers === sLoad && sLoad >= sBytes ? `servers by load: ${fmt(peak)} / ${th.maxLoadPerShard} per shard` : `servers by size: ${fmt(bytes)} / ${th.maxBytesPerShard} bytes per shard`);
    out.push({ table, currentPartitions: parts.size, partitions, servers, peakLoad: peak, bytes, reasons });
    totalLoad += peak; totalBytes += bytes;
  }
  const servers = Math.max(1, Math.ceil(totalLoad / th.maxLoadPerShard), th.maxBytesPerShard ? Math.ceil(totalBytes / th.maxBytesPerShard) : 0);
  return {
    tables: out, servers,
    reasons: [`cluster: p${Math.round(q * 100)} peak load ${fmt(totalLoad)} (sum of partition peaks, conservative), ${fmt(totalBytes)} bytes at horizon end`],
  };
}

function fmt(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

/** Step times of a size forecast, for display next to the load forecast. */
export function sizeStepTimes(series: Series, horizon: number): number[] {
  const t0 = startMs(series) + series.values.length * series.stepMs;
  return Array.from({ length: horizon }, (_, k) => t0 + k * series.stepMs);
}
