// The per-shard latency histogram: Prometheus buckets, and exact recent-window quantiles (the mover's throttle reads them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram, RECENT_LATENCIES } from '../../proxy/http/latency-histogram.js';

test('recentQuantile covers only statements that ended in the window, per shard, exactly', () => {
  let now = 0;
  const h = new LatencyHistogram(() => now);
  for (let i = 1; i <= 100; i++) {
    now = i;
    h.observe(0, i / 1000); // i ms, ending at time i
    h.observe(1, 0.5);
  }
  assert.deepEqual(h.recentQuantile(0, 0.99, 0), { ms: 99, n: 100 });
  assert.deepEqual(h.recentQuantile(0, 0.5, 0), { ms: 50, n: 100 });
  assert.deepEqual(h.recentQuantile(0, 0.99, 91), { ms: 100, n: 10 }, 'the last 10 only');
  assert.deepEqual(h.recentQuantile(1, 0.99, 0), { ms: 500, n: 100 });
  assert.equal(h.recentQuantile(0, 0.99, 101), null, 'nothing ended after the window start');
  assert.equal(h.recentQuantile(7, 0.99, 0), null, 'a shard never seen');
});

test('the ring keeps the newest RECENT_LATENCIES observations', () => {
  let now = 0;
  const h = new LatencyHistogram(() => now);
  for (let i = 0; i < RECENT_LATENCIES + 500; i++) {
    now = i;
    h.observe(0, i < 500 ? 9 : 0.001);
  }
  const r = h.recentQuantile(0, 1, 0)!;
  assert.equal(r.n, RECENT_LATENCIES);
  assert.equal(r.ms, 1, 'the 500 oldest (9 s each) were overwritten');
  assert.ok(h.exposition("lat", "help").includes(`lat_count{shard="0"} ${RECENT_LATENCIES + 500}`));
});
