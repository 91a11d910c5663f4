// Tests level-shift detection: a doubling inside the calibration window is found near where it happened; bursts are not shifts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectLevelShift, forecastStatistical } from '../../predictor/pipeline.js';
import { gaussian, makeRng } from '../../predictor/series.js';

function diurnal(n: number, seed: number, at?: (i: number) => number): Float64Array {
  const rng = makeRng(seed);
  return Float64Array.from({ length: n }, (_, i) => (100 + 60 * Math.sin((2 * Math.PI * i) / 24)) * (at ? at(i) : 1) * Math.exp(0.05 * gaussian(rng)));
}

test('a level doubling 100 steps ago is detected within a few steps of it', () => {
  const n = 24 * 7 * 6;
  const y = diurnal(n, 3, (i) => (i >= n - 100 ? 2 : 1));
  const b = detectLevelShift(y, n - 400, [24, 168]);
  assert.ok(b !== undefined, 'shift found');
  assert.ok(Math.abs(b - (n - 100)) <= 6, `found at ${b}, shift at ${n - 100}`);
});

test('no shift: plain seasonal noise, a 6-hour 5× burst, an 8-hour 3× campaign', () => {
  const n = 24 * 7 * 6;
  assert.equal(detectLevelShift(diurnal(n, 4), n - 400, [24, 168]), undefined);
  assert.equal(detectLevelShift(diurnal(n, 5, (i) => (i >= n - 150 && i < n - 144 ? 5 : 1)), n - 400, [24, 168]), undefined);
  assert.equal(detectLevelShift(diurnal(n, 6, (i) => (i >= n - 60 && i < n - 52 ? 3 : 1)), n - 400, [24, 168]), undefined);
});

test('after a shift the forecast is judged on the origins since it and says so', () => {
  const n = 24 * 7 * 6;
  const y = diurnal(n, 7, (i) => (i >= n - 120 ? 2 : 1));
  const f = forecastStatistical({ name: 's', series: { start: Date.UTC(2025, 0, 6), stepMs: 3_600_000, values: Array.from(y) } }, { horizon: 24, quantiles: [0.1, 0.5, 0.9] });
  assert.ok(f.notes.some((x) => /level shift detected/.test(x)), f.notes.join(' | '));
  // The new level is forecast: the mean over the next day is near twice the old daily mean.
  const m = f.steps.reduce((a, s) => a + s.mean, 0) / f.steps.length;
  assert.ok(m > 160 && m < 240, `mean forecast ${m}`);
});
