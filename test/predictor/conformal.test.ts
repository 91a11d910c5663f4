// Tests conformal intervals: coverage on a seeded noisy series, and adaptation to drift.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calibrate, tailQuantile } from '../../predictor/conformal.js';
import { forecastStatistical } from '../../predictor/pipeline.js';
import { gaussian, makeRng, sortedQuantile } from '../../predictor/series.js';
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

test('tail mixture: only levels beyond 5 %/95 % widen, never narrow; a jump-heavy tail is covered better', () => {
  // 400 Gaussian-ish residuals with a handful of large jumps, as after a hot-set move.
  const rng = makeRng(7);
  const res: number[] = [];
  for (let i = 0; i < 400; i++) res.push(0.1 * (rng() + rng() + rng() - 1.5));
  for (let i = 0; i < 6; i++) res.push(0.6 + 0.2 * rng());
  const sorted = Float64Array.from(res).sort();
  assert.equal(tailQuantile(sorted, 0.9, 0.9), sortedQuantile(sorted, 0.9), 'p90 stays empirical');
  assert.equal(tailQuantile(sorted, 0.5, 0.5), sortedQuantile(sorted, 0.5));
  assert.ok(tailQuantile(sorted, 0.975, 0.975) >= sortedQuantile(sorted, 0.975), 'upper tail only widens');
  assert.ok(tailQuantile(sorted, 0.025, 0.025) <= sortedQuantile(sorted, 0.025), 'lower tail only widens');
  // Exponential tails: for Laplace residuals the mixture is close to the empirical quantile.
  const lap: number[] = [];
  for (let i = 0; i < 4000; i++) { const u = rng() - 0.5; lap.push(-Math.sign(u) * 0.1 * Math.log(1 - 2 * Math.abs(u))); }
  const ls = Float64Array.from(lap).sort();
  const q = tailQuantile(ls, 0.975, 0.975);
  assert.ok(Math.abs(q - 0.1 * Math.log(20)) < 0.05, `Laplace 97.5 % quantile ≈ ${0.1 * Math.log(20)}, got ${q}`);
});
