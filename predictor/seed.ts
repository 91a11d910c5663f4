// Forecasts seeded from a restore request when a partition has no history yet.
//
// The user's numbers describe the whole table: `expectedPeak` (load score at peak) spread over
// `partitions`. With no history there is no shape, so each step gets the same distribution: a
// lognormal whose p90 is the per-partition peak and whose median is half of it (the typical
// peak-to-median ratio of diurnal load), which makes p99 ≈ 1.6× the peak: wide on purpose.

import { normalQuantile } from './series.js';
import { quantileKey, type Forecast } from './types.js';

export interface RestoreSeed {
  expectedRows?: number;
  expectedBytes?: number;
  /** Expected peak load score of the whole table. */
  expectedPeak: number;
  partitions: number;
}

/** Median as a fraction of the stated peak. */
const SEED_MEDIAN_OF_PEAK = 0.5;
/** The stated peak is read as this quantile. */
const SEED_PEAK_QUANTILE = 0.9;

export function seedForecast(seed: RestoreSeed, t0: number, stepMs: number, horizon: number, quantiles: readonly number[]): Forecast {
  const parts = Math.max(1, Math.floor(seed.partitions));
  const peak = Math.max(0, seed.expectedPeak) / parts;
  const med = peak * SEED_MEDIAN_OF_PEAK;
  const sigma = med > 0 ? Math.log(1 / SEED_MEDIAN_OF_PEAK) / normalQuantile(SEED_PEAK_QUANTILE) : 0;
  const mean = med * Math.exp((sigma * sigma) / 2);
  const steps = [];
  for (let k = 0; k < horizon; k++) {
    const q: Record<string, number> = {};
    for (const p of [...quantiles].sort((a, b) => a - b)) q[quantileKey(p)] = med * Math.exp(sigma * normalQuantile(p));
    steps.push({ t: t0 + k * stepMs, mean, quantiles: q });
  }
  return {
    steps,
    model: 'seed',
    notes: [`no usable history: seeded from restore request (expectedPeak=${seed.expectedPeak}, partitions=${parts}; p90 = peak per partition)`],
  };
}
