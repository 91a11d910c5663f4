// Series builders for the predictor tests: deterministic signals with known forecasts.

import { gaussian, makeRng } from '../../predictor/series.js';

export const HOUR = 3_600_000;
/** Monday 2025-01-06 00:00 UTC. */
export const T0 = Date.UTC(2025, 0, 6);

export function sinusoid(n: number, period = 24, level = 100, amp = 50): number[] {
  return Array.from({ length: n }, (_, i) => level + amp * Math.sin((2 * Math.PI * i) / period));
}

/** Daily + weekly pattern (weekend lower) with seeded multiplicative noise. */
export function dailyWeekly(n: number, seed: number, noise = 0.1, level = 100): number[] {
  const rng = makeRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const h = i % 24, d = Math.floor(i / 24) % 7;
    const base = level * (0.2 + 0.8 * (0.5 - 0.5 * Math.cos((2 * Math.PI * (h - 3)) / 24))) * (d >= 5 ? 0.5 : 1);
    return base * Math.exp(noise * gaussian(rng));
  });
}

export function series(values: (number | null)[], start = T0, stepMs = HOUR) {
  return { start, stepMs, values };
}
