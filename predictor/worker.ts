// Training worker: runs tfjs (training and batch prediction) off the caller's event loop.
// Protocol: one request per worker, { kind: 'train' | 'predict', ... } in, WorkerReply out.

import { parentPort, workerData } from 'node:worker_threads';
import { DutyCycle } from './duty-cycle.js';
import type { LstmConfig, LstmSeriesInput } from './lstm-data.js';
import type { SavedLstm } from './lstm-net.js';

export type WorkerRequest =
  | { kind: 'train'; config: LstmConfig; series: LstmSeriesInput[]; predict: boolean; backend?: string; duty?: SharedArrayBuffer }
  | { kind: 'predict'; saved: unknown; series: LstmSeriesInput[]; backend?: string };

export type WorkerReply =
  | { ok: true; saved: SavedLstm; predictions: Float32Array[][]; notes: string[]; backend: string; ms: number }
  | { ok: false; error: string };

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  const t0 = Date.now();
  // Loaded here, not at the top, so a bad tfjs install becomes a reply instead of a dead worker.
  const net = await import('./lstm-net.js');
  const backend = await net.initBackend(req.backend);
  if (req.kind === 'train') {
    const { model, saved, notes } = await net.trainLstm(req.series, req.config, Date.now, req.duty ? new DutyCycle(req.duty) : undefined);
    const predictions = req.predict ? net.predictLstm(model, req.config, req.series) : [];
    model.dispose();
    return { ok: true, saved, predictions, notes, backend, ms: Date.now() - t0 };
  }
  const { model, saved } = await net.loadModel(req.saved);
  const predictions = net.predictLstm(model, saved.config, req.series);
  model.dispose();
  return { ok: true, saved, predictions, notes: [], backend, ms: Date.now() - t0 };
}

if (parentPort) {
  const port = parentPort;
  handle(workerData as WorkerRequest).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
}
