// Tests each model on series with known answers: a pure sinusoid, a step, a ramp.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoltWinters } from '../../predictor/holt-winters.js';
import { SeasonalNaive } from '../../predictor/naive.js';
import { HoltWintersForecaster, SeasonalNaiveForecaster } from '../../predictor/forecasters.js';
import { series, sinusoid } from './helpers.js';

function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('seasonal naive repeats a pure sinusoid exactly', () => {
  const y = Float64Array.from(sinusoid(24 * 10 + 24));
  const m = new SeasonalNaive('short');
  m.fit(y, 240, [24]);
  const [f] = m.forecastFrom(y, [240], 24);
  assert.ok(maxAbsErr(f!, y.subarray(240, 264)) < 1e-9);
  assert.equal(m.name, 'snaive-24');
});

test('Holt-Winters forecasts a pure sinusoid within 1 % of its amplitude', () => {
  const y = Float64Array.from(sinusoid(24 * 20 + 48));
  const m = new HoltWinters();
  m.fit(y, 480, [24]);
  const [f] = m.forecastFrom(y, [480], 48);
  assert.ok(maxAbsErr(f!, y.subarray(480, 528)) < 0.5, `max error ${maxAbsErr(f!, y.subarray(480, 528))}`);
});

test('Holt-Winters follows a step (level shift) to the new level', () => {
  const vals = Array.from({ length: 400 }, (_, i) => (i < 300 ? 10 : 30));
  const f = new HoltWintersForecaster();
  f.fit(series(vals));
  const out = f.forecast(12, [0.1, 0.5, 0.9]);
  for (const s of out.steps) assert.ok(Math.abs(s.mean - 30) < 1.5, `mean ${s.mean}`);
  assert.equal(out.model, 'hw');
});

test('Holt-Winters extends a ramp (damped trend) better than the naive forecast', () => {
  const vals = Array.from({ length: 300 }, (_, i) => 10 + 0.5 * i);
  const hw = new HoltWintersForecaster();
  hw.fit(series(vals));
  const naive = new SeasonalNaiveForecaster();
  naive.fit(series(vals));
  const truth = Array.from({ length: 12 }, (_, k) => 10 + 0.5 * (300 + k));
  const eh = maxAbsErr(hw.forecast(12).steps.map((s) => s.mean), truth);
  const en = maxAbsErr(naive.forecast(12).steps.map((s) => s.mean), truth);
  // Damped by design (φ = 0.98 per step), so a little below the straight line at 12 steps.
  assert.ok(eh < 0.02 * truth[11]!, `hw error ${eh}`);
  assert.ok(eh < en, `hw ${eh} vs naive ${en}`);
});

test('forecasts are non-negative and quantiles monotone', () => {
  const vals = sinusoid(24 * 14, 24, 10, 10).map((v, i) => Math.max(0, v + ((i * 7919) % 13) - 6));
  const f = new HoltWintersForecaster();
  f.fit(series(vals));
  const out = f.forecast(24, [0.01, 0.1, 0.5, 0.9, 0.99]);
  for (const s of out.steps) {
    const q = [s.quantiles['0.01']!, s.quantiles['0.1']!, s.quantiles['0.5']!, s.quantiles['0.9']!, s.quantiles['0.99']!];
    assert.ok(s.mean >= 0 && q[0]! >= 0);
    for (let i = 1; i < q.length; i++) assert.ok(q[i]! >= q[i - 1]!, `quantiles not monotone: ${q}`);
  }
});
