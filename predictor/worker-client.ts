// Promise-based client of the training worker: one worker thread per request, always terminated.

import { Worker } from 'node:worker_threads';
import { PredictorError } from './errors.js';
import type { LstmConfig, LstmSeriesInput } from './lstm-data.js';
import type { SavedLstm } from './lstm-net.js';
import type { DutyCycle } from './duty-cycle.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

export interface WorkerResult {
  saved: SavedLstm;
  /** [series][origin] → forecast of `horizon` steps (empty when not asked for). */
  predictions: Float32Array[][];
  notes: string[];
  backend: string;
  ms: number;
}

export interface WorkerOptions {
  /** Kill the worker after this long (ms); the caller falls back to the statistical models. */
  timeoutMs?: number;
  /** Force a tfjs backend ('wasm' or 'cpu'); default tries tfjs-node, then wasm. */
  backend?: string;
  /** Paces training to this shared duty cycle; the timeout then counts work, not pauses. */
  duty?: DutyCycle;
}

function runWorker(req: WorkerRequest, opts: WorkerOptions): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: req });
    let settled = false;
    const limit = opts.timeoutMs ?? 120_000;
    const t0 = Date.now();
    // Paused time (duty cycle) does not count: re-arm for the work time still left.
    const arm = (ms: number): NodeJS.Timeout => {
      const t = setTimeout(() => {
        const left = limit - (Date.now() - t0 - (opts.duty?.pausedMs() ?? 0));
        if (left > 0) timer = arm(left);
        else finish(new PredictorError(`LSTM worker timed out after ${limit} ms of work`, 'WORKER_TIMEOUT'));
      }, ms);
      t.unref();
      return t;
    };
    let timer = arm(limit);
    const finish = (err?: Error, res?: WorkerResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      if (err) reject(err); else resolve(res!);
    };
    worker.once('message', (m: WorkerReply) => {
      if (m.ok) finish(undefined, { saved: m.saved, predictions: m.predictions, notes: m.notes, backend: m.backend, ms: m.ms });
      else finish(new PredictorError(`LSTM worker failed: ${m.error}`, 'WORKER_FAILED'));
    });
    worker.once('error', (e) => finish(new PredictorError(`LSTM worker crashed: ${e.message}`, 'WORKER_FAILED')));
    worker.once('exit', (code) => finish(new PredictorError(`LSTM worker exited with code ${code}`, 'WORKER_FAILED')));
  });
}

/** Trains the global LSTM in a worker thread; with `predict`, also forecasts every series' origins. */
export function trainInWorker(series: LstmSeriesInput[], config: LstmConfig, opts: WorkerOptions & { predict?: boolean } = {}): Promise<WorkerResult> {
  return runWorker({ kind: 'train', config, series, predict: opts.predict ?? true, ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.duty ? { duty: opts.duty.buffer } : {}) }, opts);
}

/** Forecasts with a saved model (from `saveModel`/the catalog) in a worker thread, no training. */
export function predictInWorker(saved: unknown, series: LstmSeriesInput[], opts: WorkerOptions = {}): Promise<WorkerResult> {
  return runWorker({ kind: 'predict', saved, series, ...(opts.backend ? { backend: opts.backend } : {}) }, opts);
}
