// Worker thread entry: runs the whole forecast (statistical models, and the LSTM in its own nested worker) off the proxy's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { forecastMany, type PredictOptions, type PredictResult, type SeriesInput } from '../predictor/index.js';

export interface ForecastJob {
  inputs: SeriesInput[];
  opts: Omit<PredictOptions, 'now'>;
}

export type ForecastReply = { ok: true; result: PredictResult } | { ok: false; error: string };

if (parentPort) {
  const port = parentPort;
  const job = workerData as ForecastJob;
  forecastMany(job.inputs, job.opts).then(
    (result) => port.postMessage({ ok: true, result } satisfies ForecastReply),
    (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) } satisfies ForecastReply),
  );
}
