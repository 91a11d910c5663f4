// Tests season detection by autocorrelation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectSeasons } from '../../predictor/seasonality.js';
import { gaussian, makeRng } from '../../predictor/series.js';
import { dailyWeekly, sinusoid } from './helpers.js';

test('a daily sinusoid has one season of 24 steps', () => {
  assert.deepEqual(detectSeasons(sinusoid(24 * 21)).seasons, [24]);
});

test('a 12-step cycle is found without being assumed', () => {
  assert.deepEqual(detectSeasons(sinusoid(12 * 40, 12)).seasons, [12]);
});

test('daily and weekly load gives 24 and 168', () => {
  assert.deepEqual(detectSeasons(dailyWeekly(24 * 7 * 8, 3)).seasons, [24, 168]);
});

test('white noise and a ramp have no season', () => {
  const rng = makeRng(5);
  assert.deepEqual(detectSeasons(Array.from({ length: 1000 }, () => 50 + gaussian(rng))).seasons, []);
  assert.deepEqual(detectSeasons(Array.from({ length: 500 }, (_, i) => i)).seasons, []);
});
