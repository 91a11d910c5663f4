// Tests conformal intervals: coverage on a seeded noisy series, and adaptation to drift.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrate } from '../../predictor/conformal.js';
import { forecastStatistical } from '../../predictor/pipeline.js';
import { gaussian, makeRng } from '../../predictor/series.js';
import { dailyWeekly, series } from './helpers.js';

test('80 % and 95 % intervals cover about 80 % and 95 % out of sample', () => {
  const y = dailyWeekly(24 * 7 * 9, 11, 0.15);
  let in80 = 0, in95 = 0, n = 0;
  for (let o = y.length - 24 * 14; o + 24 <= y.length; o += 24) {
    const f = forecastStatistical({ name: 's', series: series(y.slice(0, o)) }, { horizon: 24, quantiles: [0.025, 0.1, 0.9, 0.975], model: 'hw' });
    f.steps.forEach((s, k) => {
      const v = y[o + k]!;
      if (v >= s.quantiles['0.1']! && v <= s.quantiles['0.9']!) in80++;
      if (v >= s.quantiles['0.025']! && v <= s.quantiles['0.975']!) in95++;
      n++;
    });
  }
  assert.ok(Math.abs(in80 / n - 0.8) < 0.07, `80 % coverage ${in80 / n}`);
  assert.ok(Math.abs(in95 / n - 0.95) < 0.04, `95 % coverage ${in95 / n}`);
});

test('adaptive calibration widens when recent residuals grow', () => {
  const rng = makeRng(2);
  const calm = Array.from({ length: 400 }, () => 0.1 * gaussian(rng));
  const drift = [...calm.slice(0, 250), ...Array.from({ length: 150 }, () => 0.3 * gaussian(rng))];
  const a = calibrate([calm], [0.9]).offsets[0]![0]!;
  const b = calibrate([drift], [0.9]).offsets[0]![0]!;
  const bStatic = [...drift].sort((x, y) => x - y)[Math.floor(0.9 * drift.length)]!;
  assert.ok(b > a, `drift ${b} vs calm ${a}`);
  assert.ok(b > bStatic, `adaptive ${b} should exceed the static quantile ${bStatic}`);
});
