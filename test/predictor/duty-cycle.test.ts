// The training duty cycle: the pacer works the asked fraction of wall time, and pauses do not count
// against work-time deadlines.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DutyCycle, MIN_DUTY, dutyForUtilization, pacer } from '../../predictor/duty-cycle.js';
import { proxyBusyDuty } from '../../autopilot/busy-duty.js';

describe('DutyCycle', () => {
  it('starts at full speed and clamps to [MIN_DUTY, 1]; NaN means full speed', () => {
    const d = new DutyCycle();
    assert.equal(d.get(), 1);
    d.set(0.5);
    assert.equal(d.get(), 0.5);
    d.set(0);
    assert.equal(d.get(), MIN_DUTY);
    d.set(7);
    assert.equal(d.get(), 1);
    d.set(Number.NaN);
    assert.equal(d.get(), 1);
  });

  it('is shared with another thread: a value set here is read there', async () => {
    const d = new DutyCycle();
    d.set(0.3);
    const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');
      parentPort.postMessage(Atomics.load(new Int32Array(workerData), 0));`, { eval: true, workerData: d.buffer });
    const seen = await new Promise<number>((res, rej) => { w.once('message', res); w.once('error', rej); });
    await w.terminate();
    assert.equal(seen / 1000, 0.3);
  });
});

describe('pacer', () => {
  it('sleeps so the loop works about the duty fraction of wall time, and records the pauses', async () => {
    const d = new DutyCycle();
    d.set(0.25);
    const pace = pacer(d, 10);
    const t0 = performance.now();
    let work = 0;
    while (performance.now() - t0 < 600) {
      const w0 = performance.now();
      while (performance.now() - w0 < 5) { /* a 5 ms batch */ }
      work += performance.now() - w0;
      await pace();
    }
    const wall = performance.now() - t0;
    const fraction = work / wall;
    assert.ok(fraction > 0.15 && fraction < 0.4, `worked ${(fraction * 100).toFixed(0)} % of the time at duty 25 %`);
    assert.ok(d.pausedMs() > 0.5 * (wall - work), `pauses recorded: ${d.pausedMs()} ms of ${(wall - work).toFixed(0)} ms idle`);
  });

  it('never sleeps at duty 1', async () => {
    const d = new DutyCycle();
    const pace = pacer(d, 0);
    for (let i = 0; i < 20; i++) await pace();
    assert.equal(d.pausedMs(), 0);
  });
});

describe('dutyForUtilization', () => {
  it('is full speed while the proxy idles, the minimum when it is busy, monotone in between', () => {
    assert.equal(dutyForUtilization(0), 1);
    assert.equal(dutyForUtilization(0.2), 1);
    assert.equal(dutyForUtilization(0.9), MIN_DUTY);
    const mid = dutyForUtilization(0.35);
    assert.ok(mid < 1 && mid > MIN_DUTY);
    assert.ok(dutyForUtilization(0.3) > dutyForUtilization(0.4));
    assert.equal(dutyForUtilization(Number.NaN), 1);
  });

  it('proxyBusyDuty turns a busy event loop into a low duty and an idle one into full speed', async () => {
    const sample = proxyBusyDuty();
    const t0 = performance.now();
    while (performance.now() - t0 < 200) { /* the event loop is busy */ }
    assert.equal(sample(), MIN_DUTY);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sample(), 1);
  });
});
