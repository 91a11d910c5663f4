// Tests degradation: gaps, all-zero, too-short series, restore seeds; each says what it did in notes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forecastMany, forecastStatistical } from '../../predictor/pipeline.js';
import { dailyWeekly, series } from './helpers.js';

test('gaps are interpolated for fitting and reported', () => {
  const y: (number | null)[] = dailyWeekly(24 * 7 * 4, 8, 0.05);
  for (let i = 300; i < 310; i++) y[i] = null;
  y[0] = null;
  const f = forecastStatistical({ name: 's', series: series(y) }, { horizon: 24, model: 'hw' });
  assert.ok(f.notes.some((n) => /11 missing interval\(s\) interpolated/.test(n)), f.notes.join('|'));
  assert.ok(f.steps.every((s) => Number.isFinite(s.mean) && s.mean > 0));
});

test('an all-zero series forecasts zero and says so', () => {
  const f = forecastStatistical({ name: 's', series: series(new Array(200).fill(0)) }, { horizon: 6 });
  assert.equal(f.model, 'zero');
  assert.ok(f.notes.includes('all-zero history: forecasting zero'));
  assert.ok(f.steps.every((s) => s.mean === 0 && Object.values(s.quantiles).every((q) => q === 0)));
});

test('too little history falls back to naive with a note, or to the restore seed', async () => {
  const res = await forecastMany([
    { name: 'short', series: series([5, 6, 7]) },
    { name: 'seeded', series: series([]), restore: { expectedPeak: 800, partitions: 4, expectedRows: 1e6 } },
    { name: 'empty', series: series([null, null]) },
  ], { horizon: 4, quantiles: [0.1, 0.5, 0.9] });
  const s = res.forecasts['short']!;
  assert.equal(s.model, 'naive');
  assert.ok(s.notes.some((n) => /too little history.*fell back to naive/.test(n)));
  assert.equal(s.steps[0]!.mean, 6);
  const seeded = res.forecasts['seeded']!;
  assert.equal(seeded.model, 'seed');
  assert.ok(seeded.notes.some((n) => /seeded from restore request/.test(n)));
  assert.ok(Math.abs(seeded.steps[0]!.quantiles['0.9']! - 200) < 1e-9, 'p90 = peak per partition');
  assert.ok(res.forecasts['empty']!.notes.some((n) => /no history/.test(n)));
});

test('a short but usable series is forecast without the LSTM, with a note', async () => {
  const res = await forecastMany([{ name: 's', series: series(dailyWeekly(60, 1)) }], { horizon: 6 });
  const f = res.forecasts['s']!;
  assert.equal(f.steps.length, 6);
  assert.ok(f.notes.some((n) => /too little history for the LSTM/.test(n)), f.notes.join('|'));
});
