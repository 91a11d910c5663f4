// Tests the load score, the size forecast and the partition/server recommendation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forecastSize, recommend } from '../../predictor/growth.js';
import { loadScore } from '../../predictor/load-score.js';
import type { Forecast } from '../../predictor/types.js';
import { series } from './helpers.js';

test('load score weighs writes, rows, bytes and server time', () => {
  assert.equal(loadScore({ reads: 10 }), 10);
  assert.equal(loadScore({ writes: 10 }), 30);
  assert.equal(loadScore({ reads: 1, rows: 10_000, bytes: 65_536, latencyMs: 50 }), 1 + 100 + 1 + 10);
  assert.equal(loadScore({ reads: -5, writes: Number.NaN }), 0);
});

test('size grows along its trend to the horizon end, p90 above the point', () => {
  const vals = Array.from({ length: 200 }, (_, i) => 1000 + 10 * i + (i % 7));
  const f = forecastSize(series(vals), 24);
  assert.equal(f.steps.length, 24);
  assert.ok(Math.abs(f.atHorizon - (1000 + 10 * 223)) < 60, `at horizon ${f.atHorizon}`);
  assert.ok(f.p90AtHorizon >= f.atHorizon);
});

function flat(p90: number, steps = 4): Forecast {
  return { model: 'test', notes: [], steps: Array.from({ length: steps }, (_, k) => ({ t: k, mean: p90 / 2, quantiles: { '0.5': p90 / 2, '0.9': p90 } })) };
}

test('recommend splits hot or large partitions and sizes servers by load and bytes', () => {
  const r = recommend({
    forecasts: [
      { table: 'orders', partition: 1, forecast: flat(250) },
      { table: 'orders', partition: 2, forecast: flat(50) },
      { table: 'users', partition: 3, forecast: flat(10) },
    ],
    sizes: [
      { table: 'orders', partition: 1, bytes: 1e9 },
      { table: 'orders', partition: 2, bytes: 5e9 },
      { table: 'users', partition: 3, bytes: 1e8 },
    ],
    thresholds: { maxLoadPerPartition: 100, maxLoadPerShard: 200, maxBytesPerPartition: 2e9, maxBytesPerShard: 1e10 },
  });
  const orders = r.tables.find((t) => t.table === 'orders')!;
  assert.equal(orders.partitions, 3 + 3); // 250/100 → 3 by load; 5e9/2e9 → 3 by size
  assert.equal(orders.servers, 2); // 300 load / 200 per shard
  assert.equal(r.tables.find((t) => t.table === 'users')!.partitions, 1);
  assert.equal(r.servers, 2);
  assert.ok(orders.reasons.some((x) => /split/.test(x)));
});
