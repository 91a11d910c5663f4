// The forecast runners (child process, worker thread) forecast off the event loop, at the priority
// asked, and leave nothing behind on the autopilot's long-lived abort signal.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { execFileSync } from 'node:child_process';
import { forecastOffLoop, lowPriorityLauncher, type ForecastPlace } from '../../autopilot/forecast-runner.js';

const values = Array.from({ length: 96 }, (_, i) => 10 + 5 * Math.sin((2 * Math.PI * i) / 24));
const job = (priority: 'low' | 'normal') => ({
  inputs: [{ name: 'a', series: { start: Date.UTC(2030, 0, 1), stepMs: 3_600_000, values } }],
  opts: { horizon: 4, quantiles: [0.1, 0.9], model: 'auto' as const, lstm: false as const },
  priority,
});

function chrtWorks(): boolean {
  try {
    execFileSync('chrt', ['--idle', '0', 'true'], { stdio: 'ignore' });
    return process.platform === 'linux';
  } catch {
    return false;
  }
}

for (const place of ['process', 'thread'] as ForecastPlace[]) {
  describe(`forecast in a ${place}`, () => {
    it('forecasts, and removes its abort listener when the run ends (a listener per run used to pile up on the shared signal)', async () => {
      const ac = new AbortController();
      for (const priority of ['normal', 'low'] as const) {
        const r = await forecastOffLoop(place, job(priority), 120_000, ac.signal);
        assert.equal(r.forecasts.a!.steps.length, 4, `a ${priority}-priority run forecasts`);
        assert.ok(r.forecasts.a!.steps.every((s) => Number.isFinite(s.mean)));
        assert.match(r.ranAt ?? '', place === 'process' ? /^a child process at / : /^a worker thread at /);
        assert.equal(getEventListeners(ac.signal, 'abort').length, 0, `no listener left after a ${priority}-priority run`);
      }
    });

    it('an abort stops a run in flight with a DBA-readable error', async () => {
      const ac = new AbortController();
      const long = Array.from({ length: 2000 }, (_, i) => 10 + 5 * Math.sin((2 * Math.PI * i) / 24));
      const run = forecastOffLoop(place, { inputs: [{ name: 'a', series: { start: 0, stepMs: 3_600_000, values: long } }], opts: { horizon: 48, quantiles: [0.5], model: 'auto', lstm: false } }, 120_000, ac.signal);
      ac.abort();
      await assert.rejects(run, /forecast stopped: the proxy is shutting down/);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    });

    it('a run past its deadline fails with FORECAST_TIMEOUT and is ended', async () => {
      const long = Array.from({ length: 4000 }, (_, i) => 10 + 5 * Math.sin((2 * Math.PI * i) / 24));
      await assert.rejects(forecastOffLoop(place, { inputs: [{ name: 'a', series: { start: 0, stepMs: 3_600_000, values: long } }], opts: { horizon: 48, quantiles: [0.5], model: 'auto', lstm: false } }, 1), /timed out after 1 ms/);
    });
  });
}

describe('low-priority forecast process', () => {
  it('starts the child at SCHED_IDLE where chrt works (its threads inherit it), else at nice 19', async (t) => {
    if (process.platform !== 'linux') {
      t.skip('scheduling policies are read from Linux /proc');
      return;
    }
    const low = await forecastOffLoop('process', job('low'), 120_000);
    const normal = await forecastOffLoop('process', job('normal'), 120_000);
    if (chrtWorks()) {
      assert.equal((await lowPriorityLauncher()).how, 'SCHED_IDLE');
      assert.match(low.ranAt!, /SCHED_IDLE/);
    } else {
      assert.match(low.ranAt!, /nice 19/);
    }
    assert.match(normal.ranAt!, /SCHED_OTHER/);
  });
});

describe('paced training', () => {
  for (const place of ['process', 'thread'] as ForecastPlace[]) {
    it(`in a ${place}: a busy proxy (duty ${0.1}) slows the LSTM training, which still finishes and says it was paced`, async () => {
      const long = Array.from({ length: 24 * 21 }, (_, i) => 100 + 50 * Math.sin((2 * Math.PI * i) / 24) + (i % 7));
      const r = await forecastOffLoop(place, {
        inputs: [{ name: 'a', series: { start: Date.UTC(2030, 0, 1), stepMs: 3_600_000, values: long } }],
        opts: { horizon: 6, quantiles: [0.5], model: 'auto', lstm: { epochs: 2, samples: 64 } },
        priority: 'normal',
      }, 120_000, undefined, () => 0.1);
      assert.ok(r.lstmModel, 'the LSTM trained');
      assert.ok(r.forecasts.a!.notes.some((n) => /LSTM training paced while the host was busy: [\d.]+ s of work, [\d.]+ s paused/.test(n)), r.forecasts.a!.notes.join('; '));
    });
  }
});
