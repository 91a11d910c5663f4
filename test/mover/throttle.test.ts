// The backfill throttle, as a pure state machine fed probe latencies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MIN_BYTES_PER_SEC, PROBE_WINDOW, Throttle, type ThrottleOptions } from '../../mover/backfill.js';
import { chunkRowsFor } from '../../mover/run.js';

const OPTS: ThrottleOptions = { chunkRows: 1000, minChunkRows: 100, maxChunkRows: 50000, latencyFactor: 2, latencyFloorMs: 2, maxDelayMs: 1000 };

test('the bound is factor × baseline, never closer to the baseline than the floor', () => {
  assert.equal(new Throttle(OPTS, 10, undefined).state.boundMs, 20);
  assert.equal(new Throttle(OPTS, 0.3, undefined).state.boundMs, 2.3);
});

test('one spike does not throttle; a sustained rise does, and the copy recovers when it ends', () => {
  const t = new Throttle(OPTS, 1, undefined);
  for (let i = 0; i < 4; i++) t.observe(1);
  t.observe(500);
  assert.equal(t.state.throttledChunks, 0, 'a single spike is outvoted by the window');
  assert.equal(t.state.delayMs, 0);
  assert.ok(t.state.chunkRows > 1000, 'chunks grew while latency was inside the bound');
  for (let i = 0; i < 10; i++) t.observe(50);
  assert.ok(t.state.throttledChunks >= 10 - Math.floor(PROBE_WINDOW / 2), `throttled ${t.state.throttledChunks} chunks`);
  assert.equal(t.state.chunkRows, OPTS.minChunkRows, 'chunks shrink to the minimum');
  assert.equal(t.state.delayMs, OPTS.maxDelayMs, 'pauses grow to the maximum');
  for (let i = 0; i < 20; i++) t.observe(1);
  assert.equal(t.state.delayMs, 0, 'pauses go away once latency is back');
  assert.ok(t.state.chunkRows > 1000, `chunks grow back (${t.state.chunkRows})`);
});

test('a resumed job keeps its throttle state but takes the new baseline', () => {
  const t = new Throttle(OPTS, 1, undefined);
  for (let i = 0; i < 5; i++) t.observe(100);
  const resumed = new Throttle(OPTS, 40, t.state);
  assert.equal(resumed.state.boundMs, 80);
  assert.equal(resumed.state.chunkRows, t.state.chunkRows);
  assert.equal(resumed.state.delayMs, t.state.delayMs);
});

test('the baseline follows the host: a slower host without the copy is not blamed on the copy', () => {
  const t = new Throttle(OPTS, 1, undefined);
  // The host slows down for its own reasons: probes are slow between chunks too.
  for (let i = 0; i < 10; i++) {
    t.observe(10);
    t.observeIdle(9);
  }
  assert.ok(t.state.baselineMs >= 9, `baseline followed the idle probes (${t.state.baselineMs})`);
  assert.equal(t.state.delayMs, 0, 'no pauses: the copy is not what makes the host slow');
  // The copy itself makes the source slow: idle probes stay fast, probes during chunks are not.
  const u = new Throttle(OPTS, 1, undefined);
  for (let i = 0; i < 10; i++) {
    u.observe(10);
    u.observeIdle(1);
  }
  assert.equal(u.state.baselineMs, 1);
  assert.ok(u.state.delayMs > 0 && u.state.chunkRows < 1000, 'the copy backs off');
  // The baseline never drops below the level measured before the job.
  const v = new Throttle(OPTS, 5, undefined);
  for (let i = 0; i < 5; i++) v.observeIdle(0.5);
  assert.equal(v.state.baselineMs, 5);
});

test('the foreground p99 throttles on its own: probes fine, the proxy\'s statements on the source over 2× their pre-copy p99', () => {
  const t = new Throttle(OPTS, 1, undefined);
  t.setForegroundBaseline(8);
  assert.equal(t.foregroundBoundMs(), 16);
  for (let i = 0; i < 3; i++) t.observe(1, 10);
  assert.equal(t.state.throttledChunks, 0, 'inside the bound');
  t.observe(1, 400);
  assert.equal(t.state.throttledChunks, 0, 'one slow chunk is outvoted by the window');
  for (let i = 0; i < 6; i++) t.observe(1, 40);
  assert.ok(t.state.throttledChunks >= 4, `throttled ${t.state.throttledChunks} chunks on the foreground alone`);
  assert.ok(t.state.delayMs > 0);
  for (let i = 0; i < 12; i++) t.observe(1, 9);
  assert.equal(t.state.delayMs, 0, 'recovers once the foreground is back');
  // Chunks with too few foreground statements give no sample: probes alone decide.
  const u = new Throttle(OPTS, 1, undefined);
  u.setForegroundBaseline(8);
  for (let i = 0; i < 6; i++) u.observe(1, undefined);
  assert.equal(u.state.throttledChunks, 0);
  // Without a baseline (the proxy saw too little before the copy) the foreground is not judged.
  const v = new Throttle(OPTS, 1, undefined);
  for (let i = 0; i < 6; i++) v.observe(1, 1000);
  assert.equal(v.state.throttledChunks, 0);
});

test('foreground samples age out when chunks bring none: a copy throttled to tiny chunks recovers', () => {
  const t = new Throttle(OPTS, 1, undefined);
  t.setForegroundBaseline(5);
  for (let i = 0; i < 5; i++) t.observe(1, 50);
  assert.ok(t.state.delayMs > 0, 'throttled on the foreground');
  for (let i = 0; i < 5; i++) t.observe(1, undefined);
  assert.deepEqual(t.state.fgRecentMs, [], 'no stale sample left');
  for (let i = 0; i < 10; i++) t.observe(1, undefined);
  assert.equal(t.state.delayMs, 0, 'the pauses went away');
});

test('with foreground statements on the source the copy is paced: half its first speed, halved when over the bound, a tenth faster per chunk inside it', () => {
  const t = new Throttle(OPTS, 1, undefined);
  t.setForegroundBaseline(5);
  // 1 MB in 100 ms: 10 MB/s unpaced.
  t.observe(1, 5, { bytes: 1_000_000, ms: 100 });
  assert.equal(t.state.bytesPerSec, 5_000_000, 'the pace starts at half the first chunk\'s speed');
  t.observe(1, 5, { bytes: 1_000_000, ms: 200 });
  assert.ok(Math.abs(t.state.bytesPerSec! - 5_500_000) < 1, 'inside the bound: a tenth faster');
  for (let i = 0; i < 3; i++) t.observe(1, 50, { bytes: 1_000_000, ms: 200 });
  assert.ok(t.state.bytesPerSec! < 5_000_000 / 2, `over the bound: the pace halves (${t.state.bytesPerSec})`);
  assert.equal(t.state.delayMs, 0, 'no pauses between chunks while the pace can still drop');
  assert.ok(t.state.chunkRows > OPTS.chunkRows, 'over the bound the chunk size is left alone: the pace is what drops');
  // Sustained: the pace reaches its floor, and only then do pauses between chunks start.
  for (let i = 0; i < 20; i++) t.observe(1, 50, { bytes: 100_000, ms: 400 });
  assert.equal(t.state.bytesPerSec, MIN_BYTES_PER_SEC);
  assert.ok(t.state.delayMs > 0, 'at the floor, pauses take over');
  // Back inside the bound: pauses go first, then the pace climbs.
  for (let i = 0; i < 30; i++) t.observe(1, 5, { bytes: 250_000, ms: 1000 });
  assert.equal(t.state.delayMs, 0);
  assert.ok(t.state.bytesPerSec! > 2 * MIN_BYTES_PER_SEC, `the pace climbs back (${t.state.bytesPerSec})`);
});

test('without foreground statements before the copy there is no pace: probes and chunk sizes alone throttle', () => {
  const t = new Throttle(OPTS, 1, undefined);
  for (let i = 0; i < 5; i++) t.observe(1, undefined, { bytes: 1_000_000, ms: 100 });
  assert.equal(t.state.bytesPerSec, undefined);
  assert.ok(t.state.chunkRows > OPTS.chunkRows);
});

test('a paced chunk is sized to last about a second at the pace; an unpaced one keeps the throttle\'s size', () => {
  assert.equal(chunkRowsFor(50000, undefined, { rows: 1000, bytes: 100_000 }, 100), 50000);
  assert.equal(chunkRowsFor(50000, 1_000_000, { rows: 0, bytes: 0 }, 100), 50000, 'no rows copied yet: no row size to go by');
  assert.equal(chunkRowsFor(50000, 1_000_000, { rows: 1000, bytes: 100_000 }, 100), 10000, '1 MB/s of 100-byte rows');
  assert.equal(chunkRowsFor(5000, 1_000_000, { rows: 1000, bytes: 100_000 }, 100), 5000, 'never more than the throttle allows');
  assert.equal(chunkRowsFor(50000, 1_000, { rows: 1000, bytes: 100_000 }, 100), 100, 'never fewer than the minimum');
});
