// Seeded synthetic load traces for the predictor backtest: each is a set of hourly series + events.

import type { ScheduledEvent } from '../../predictor/events.js';
import { gaussian, makeRng } from '../../predictor/series.js';

export interface Trace {
  name: string;
  /** Seasonal traces must beat seasonal naive (issue 7 acceptance). */
  seasonal: boolean;
  start: number;
  stepMs: number;
  series: { name: string; values: number[] }[];
  /** Announced events (given to the model, past and future). */
  events: ScheduledEvent[];
  /** Unannounced bursts, for the report only. */
  hidden: { series: string; from: number; to: number }[];
}

export const HOUR = 3_600_000;
/** Monday 2025-01-06 00:00 UTC. */
export const TRACE_START = Date.UTC(2025, 0, 6);

/** Daily shape with a 10× peak/trough ratio: trough 04:00, peak 14:00, plus a weekend dip. */
function shape(hourOfWeek: number, peakShift = 0): number {
  const h = (hourOfWeek + 24 * 7 - peakShift) % 24;
  const day = Math.floor(hourOfWeek / 24) % 7; // 0 = Monday
  // Smooth bump: cosine from trough (4h) to peak (14h), asymmetric evening decay.
  const x = h < 4 ? (h + 24 - 14) : h - 14;
  const u = x <= 0 ? x / 10 : x / 14; // −1..0 rising, 0..1 falling
  const c = 0.5 + 0.5 * Math.cos(Math.PI * Math.min(1, Math.abs(u)));
  const daily = 0.1 + 0.9 * c; // 0.1 … 1.0 → 10×
  const weekend = day >= 5 ? 0.55 : day === 4 ? 0.9 : 1;
  return daily * weekend;
}

interface Noise { next(): number }
/** Multiplicative noise: AR(1) in log space plus white noise; AR is what makes short horizons predictable. */
function noise(rng: () => number, ar = 0.7, sAr = 0.07, sWhite = 0.06): Noise {
  let z = 0;
  return { next: () => { z = ar * z + sAr * gaussian(rng); return Math.exp(z + sWhite * gaussian(rng)); } };
}

export function makeTraces(seed: number, opts: { weeks?: number; seriesPerTrace?: number } = {}): Trace[] {
  const weeks = opts.weeks ?? 10;
  const S = opts.seriesPerTrace ?? 6;
  const n = weeks * 168;
  const rng = makeRng(seed);
  const levels = Array.from({ length: S }, () => 50 * Math.exp(1.5 * gaussian(rng)) + 5);
  const base = (name: string, f: (s: number, i: number, nz: Noise) => number): Trace['series'] =>
    levels.map((lv, s) => {
      const nz = noise(rng);
      return { name: `${name}_${s}`, values: Array.from({ length: n }, (_, i) => Math.max(0, lv * f(s, i, nz))) };
    });
  const traces: Trace[] = [];

  traces.push({ name: 'diurnal-weekly', seasonal: true, start: TRACE_START, stepMs: HOUR, events: [], hidden: [],
    series: base('dw', (_s, i, nz) => shape(i % 168) * nz.next()) });

  traces.push({ name: 'ramp', seasonal: true, start: TRACE_START, stepMs: HOUR, events: [], hidden: [],
    series: base('ramp', (s, i, nz) => shape(i % 168) * (1 + (2 + s % 3) * i / n) * nz.next()) });

  // Unannounced 5× flash crowds: ~one per series per 10 days, 2–6 hours.
  const hidden: Trace['hidden'] = [];
  const flashSeries = base('flash', (_s, i, nz) => shape(i % 168) * nz.next());
  for (const ser of flashSeries) {
    for (let at = Math.floor(rng() * 240); at < n; at += 120 + Math.floor(rng() * 240)) {
      const len = 2 + Math.floor(rng() * 5);
      for (let i = at; i < Math.min(n, at + len); i++) ser.values[i] = ser.values[i]! * 5;
      hidden.push({ series: ser.name, from: at, to: at + len });
    }
  }
  traces.push({ name: 'flash-crowd', seasonal: true, start: TRACE_START, stepMs: HOUR, events: [], hidden, series: flashSeries });

  // Announced campaigns: "promo" every 5 days (+ a few hours of jitter), 8 hours, 3× load.
  const events: ScheduledEvent[] = [];
  const promo = new Uint8Array(n);
  for (let at = 60; at < n + 96; at += 120) {
    const st = at + Math.floor(rng() * 6);
    events.push({ name: 'promo', start: TRACE_START + st * HOUR, durationMs: 8 * HOUR, multiplier: 2.5 });
    for (let i = st; i < Math.min(n, st + 8); i++) promo[i] = 1;
  }
  traces.push({ name: 'campaign', seasonal: true, start: TRACE_START, stepMs: HOUR, events, hidden: [],
    series: base('camp', (_s, i, nz) => shape(i % 168) * (promo[i] ? 3 : 1) * nz.next()) });

  // Growth with a drifting Zipf hot set: partition shares ∝ rank^−1.1, log-shares random-walk.
  const P = S;
  const logShare = Array.from({ length: P }, (_, r) => -1.1 * Math.log(r + 1));
  const shareAt: number[][] = [];
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < P; r++) logShare[r] = logShare[r]! + 0.01 * gaussian(rng) + (i % 336 === 0 && rng() < 0.3 ? 0.3 * gaussian(rng) : 0);
    const e = logShare.map((v) => Math.exp(v));
    const tot = e.reduce((a, b) => a + b, 0);
    shareAt.push(e.map((v) => v / tot));
  }
  const zNoise = Array.from({ length: P }, () => noise(rng));
  traces.push({ name: 'zipf-growth', seasonal: true, start: TRACE_START, stepMs: HOUR, events: [], hidden: [],
    series: Array.from({ length: P }, (_, r) => ({ name: `zipf_${r}`, values: Array.from({ length: n }, (_, i) =>
      1000 * Math.pow(1.01, i / 24) * shareAt[i]![r]! * shape(i % 168) * zNoise[r]!.next()) })) });

  // Regime shift at 75 % of the trace: level ×2 and the daily peak three hours later.
  const shiftAt = Math.floor(n * 0.75);
  traces.push({ name: 'regime-shift', seasonal: false, start: TRACE_START, stepMs: HOUR, events: [], hidden: [],
    series: base('shift', (_s, i, nz) => (i < shiftAt ? shape(i % 168) : 2 * shape(i % 168, 3)) * nz.next()) });
  return traces;
}
