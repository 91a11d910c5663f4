// The forecast worker runner leaves nothing behind on the autopilot's long-lived abort signal.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { forecastInWorker } from '../../autopilot/forecast-runner.js';

describe('forecastInWorker', () => {
  it('removes its abort listener when the run ends (a listener per run used to pile up on the shared signal)', async () => {
    const ac = new AbortController();
    const values = Array.from({ length: 96 }, (_, i) => 10 + 5 * Math.sin((2 * Math.PI * i) / 24));
    for (const priority of ['normal', 'low'] as const) {
      const r = await forecastInWorker({
        inputs: [{ name: 'a', series: { start: Date.UTC(2030, 0, 1), stepMs: 3_600_000, values } }],
        opts: { horizon: 4, quantiles: [0.1, 0.9], model: 'auto', lstm: false },
        priority,
      }, 120_000, ac.signal);
      assert.equal(r.forecasts.a!.steps.length, 4, `a ${priority}-priority run forecasts`);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 0, `no listener left after a ${priority}-priority run`);
    }
  });

  it('an abort stops a run in flight with a DBA-readable error', async () => {
    const ac = new AbortController();
    const values = Array.from({ length: 2000 }, (_, i) => 10 + 5 * Math.sin((2 * Math.PI * i) / 24));
    const run = forecastInWorker({ inputs: [{ name: 'a', series: { start: 0, stepMs: 3_600_000, values } }], opts: { horizon: 48, quantiles: [0.5], model: 'auto', lstm: false } }, 120_000, ac.signal);
    ac.abort();
    await assert.rejects(run, /forecast stopped: the proxy is shutting down/);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });
});
