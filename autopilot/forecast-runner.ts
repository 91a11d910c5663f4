// Runs forecastMany in a worker thread (one per run, always terminated) so no model fit blocks the proxy.
import { Worker } from 'node:worker_threads';
import type { PredictResult } from '../predictor/index.js';
import { AutopilotError } from './errors.js';
import type { ForecastJob, ForecastReply } from './forecast-worker.js';

/** Whole-run deadline: the LSTM has its own (shorter) timeout inside. */
export const FORECAST_TIMEOUT_MS = 300_000;

export function forecastInWorker(job: ForecastJob, timeoutMs = FORECAST_TIMEOUT_MS, signal?: AbortSignal): Promise<PredictResult> {
  return new Promise((resolve, reject) => {
    // Low priority is not available per thread in Node; the worker yields the main loop entirely.
    const worker = new Worker(new URL('./forecast-worker.js', import.meta.url), { workerData: job });
    let settled = false;
    const onAbort = (): void => finish(new AutopilotError('FORECAST_ABORTED', 'forecast stopped: the proxy is shutting down'));
    const finish = (err?: Error, res?: PredictResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The signal lives as long as the autopilot: a listener left behind per run would pile up.
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      if (err) reject(err); else resolve(res!);
    };
    const timer = setTimeout(() => finish(new AutopilotError('FORECAST_TIMEOUT', `forecast worker timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: ForecastReply) => (m.ok ? finish(undefined, m.result) : finish(new AutopilotError('FORECAST_FAILED', `forecast failed: ${m.error}`))));
    worker.once('error', (e) => finish(new AutopilotError('FORECAST_FAILED', `forecast worker crashed: ${e.message}`)));
    worker.once('exit', (code) => finish(new AutopilotError('FORECAST_FAILED', `forecast worker exited with code ${code}`)));
  });
}
