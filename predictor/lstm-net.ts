// The global LSTM on tfjs: backend selection, network, training loop, save/load as JSON + base64.
// Imported only by the training worker (and tests), so the proxy's event loop never runs tfjs.

import { pacer, type DutyCycle } from './duty-cycle.js';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ModelFormatError } from './errors.js';
import { loadModelValue } from './model-store.js';
import {
  COV_FEATURES, SEQ_FEATURES, decodePredictions, predictionBatch, trainingBatch,
  type Batch, type LstmConfig, type LstmSeriesInput,
} from './lstm-data.js';
import { makeRng } from './series.js';

export const MODEL_FORMAT = 'pgtide-lstm';
export const MODEL_VERSION = 1;

/** What the catalog stores (jsonb, or its JSON text in a bytea): config + weights as base64. */
export interface SavedLstm {
  format: typeof MODEL_FORMAT;
  version: number;
  config: LstmConfig;
  /** Latest training target time (ms) across series: forecasts from later origins are out-of-sample. */
  trainedUntil: number;
  backend: string;
  trainMs: number;
  finalLoss: number;
  weights: { shape: number[]; data: string }[];
}

let backendReady: Promise<string> | undefined;

/**
 * tfjs-node (native TensorFlow) when it happens to be installed, else wasm, else the plain cpu
 * backend. tfjs-node is not a dependency: the import is by a computed name so neither the compiler
 * nor the bundle requires it.
 */
export function initBackend(prefer?: string): Promise<string> {
  backendReady ??= (async () => {
    if (prefer !== 'wasm' && prefer !== 'cpu') {
      try {
        const name = ['@tensorflow', 'tfjs-node'].join('/');
        await import(name);
        if (await tf.setBackend('tensorflow')) { await tf.ready(); return 'tensorflow'; }
      } catch { /* not installed: fine */ }
    }
    if (prefer !== 'cpu') {
      try {
        if (await tf.setBackend('wasm')) { await tf.ready(); return 'wasm'; }
      } catch { /* fall through */ }
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return 'cpu';
  })();
  return backendReady;
}

function build(cfg: LstmConfig): tf.LayersModel {
  const seqIn = tf.input({ shape: [cfg.window, SEQ_FEATURES] });
  const covIn = tf.input({ shape: [cfg.horizon * COV_FEATURES] });
  const seed = cfg.seed;
  const rec = tf.layers.lstm({
    units: cfg.units,
    kernelInitializer: tf.initializers.glorotUniform({ seed }),
    recurrentInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
  }).apply(seqIn) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate().apply([rec, covIn]) as tf.SymbolicTensor;
  const hid = tf.layers.dense({
    units: cfg.hidden, activation: 'relu',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }),
  }).apply(cat) as tf.SymbolicTensor;
  // Zero output: the untrained net forecasts exactly the long-season naive forecast.
  const out = tf.layers.dense({ units: cfg.horizon, kernelInitializer: 'zeros' }).apply(hid) as tf.SymbolicTensor;
  return tf.model({ inputs: [seqIn, covIn], outputs: out });
}

function tensors(b: Batch, cfg: LstmConfig, from = 0, to = b.n): [tf.Tensor3D, tf.Tensor2D] {
  const L = cfg.window, H = cfg.horizon;
  return [
    tf.tensor3d(b.seq.subarray(from * L * SEQ_FEATURES, to * L * SEQ_FEATURES), [to - from, L, SEQ_FEATURES]),
    tf.tensor2d(b.cov.subarray(from * H * COV_FEATURES, to * H * COV_FEATURES), [to - from, H * COV_FEATURES]),
  ];
}

export interface TrainResult {
  saved: SavedLstm;
  notes: string[];
}

/** Trains one global model over all series (targets before each series' trainEnd). */
export async function trainLstm(series: readonly LstmSeriesInput[], cfg: LstmConfig, now: () => number = Date.now, duty?: DutyCycle): Promise<{ model: tf.LayersModel } & TrainResult> {
  const pace = duty ? pacer(duty) : undefined;
  // The time budget counts work: pauses asked by the duty cycle do not use it up.
  const worked = (): number => now() - t0 - (duty?.pausedMs() ?? 0);
  const backend = await initBackend();
  const t0 = now();
  const notes: string[] = [];
  const rng = makeRng(cfg.seed);
  const data = trainingBatch(series, cfg, rng);
  if (data.n === 0) throw new Error('no series long enough to train the LSTM');
  const model = build(cfg);
  const opt = tf.train.adam(cfg.learningRate);
  const H = cfg.horizon;
  const order = Array.from({ length: data.n }, (_, i) => i);
  let finalLoss = NaN;
  const L = cfg.window;
  outer: for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let lossSum = 0, batches = 0;
    for (let from = 0; from < data.n; from += cfg.batchSize) {
      const idx = order.slice(from, from + cfg.batchSize);
      const m = idx.length;
      const seq = new Float32Array(m * L * SEQ_FEATURES);
      const cov = new Float32Array(m * H * COV_FEATURES);
      const tgt = new Float32Array(m * H);
      idx.forEach((s, r) => {
        seq.set(data.seq.subarray(s * L * SEQ_FEATURES, (s + 1) * L * SEQ_FEATURES), r * L * SEQ_FEATURES);
        cov.set(data.cov.subarray(s * H * COV_FEATURES, (s + 1) * H * COV_FEATURES), r * H * COV_FEATURES);
        tgt.set(data.target!.subarray(s * H, (s + 1) * H), r * H);
      });
      const loss = tf.tidy(() => {
        const xs = tf.tensor3d(seq, [m, L, SEQ_FEATURES]);
        const xc = tf.tensor2d(cov, [m, H * COV_FEATURES]);
        const yt = tf.tensor2d(tgt, [m, H]);
        // Absolute error: the median forecast is what MAE/MASE reward, and outliers don't dominate.
        return opt.minimize(() => tf.mean(tf.abs(tf.sub(model.apply([xs, xc]) as tf.Tensor, yt))) as tf.Scalar, true) as tf.Scalar;
      }) as tf.Scalar;
      lossSum += (await loss.data())[0]!;
      loss.dispose();
      batches++;
      if (pace) await pace();
    }
    finalLoss = lossSum / Math.max(1, batches);
    if (worked() > cfg.maxTrainMs && epoch < cfg.epochs - 1) {
      notes.push(`LSTM training stopped after ${epoch + 1}/${cfg.epochs} epochs (time budget ${cfg.maxTrainMs} ms)`);
      break outer;
    }
  }
  opt.dispose();
  const paused = duty?.pausedMs() ?? 0;
  if (paused > 0) notes.push(`LSTM training paced while the host was busy: ${(worked() / 1000).toFixed(1)} s of work, ${(paused / 1000).toFixed(1)} s paused`);
  let trainedUntil = -Infinity;
  for (const s of series) trainedUntil = Math.max(trainedUntil, s.start + (s.trainEnd - 1) * s.stepMs);
  const saved = await saveModel(model, cfg, { trainedUntil, backend, trainMs: worked(), finalLoss });
  return { model, saved, notes };
}

/** Serializes weights as base64 float32 in a JSON value (jsonb-ready). */
export async function saveModel(
  model: tf.LayersModel, config: LstmConfig,
  meta: { trainedUntil: number; backend: string; trainMs: number; finalLoss: number },
): Promise<SavedLstm> {
  const weights = [];
  for (const w of model.getWeights()) {
    const data = (await w.data()) as Float32Array;
    weights.push({ shape: w.shape, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') });
  }
  return { format: MODEL_FORMAT, version: MODEL_VERSION, config, ...meta, weights };
}

/** Rebuilds a model from `saveModel`'s value, its JSON text, or the bytes of that text. */
export async function loadModel(v: unknown): Promise<{ model: tf.LayersModel; saved: SavedLstm }> {
  await initBackend();
  const saved = parseSaved(v);
  const model = build(saved.config);
  const current = model.getWeights();
  if (current.length !== saved.weights.length) throw new ModelFormatError(`saved model has ${saved.weights.length} weight tensors, expected ${current.length}`);
  const ts = saved.weights.map((w, i) => {
    const buf = Buffer.from(w.data, 'base64');
    const arr = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const want = current[i]!.shape;
    if (want.join('x') !== w.shape.join('x') || arr.length !== w.shape.reduce((a, b) => a * b, 1)) {
      throw new ModelFormatError(`weight ${i} has shape ${w.shape.join('x')}, expected ${want.join('x')}`);
    }
    return tf.tensor(arr, w.shape);
  });
  model.setWeights(ts);
  ts.forEach((t) => t.dispose());
  return { model, saved };
}

export function parseSaved(v: unknown): SavedLstm {
  return loadModelValue(v);
}

/** Forecasts every series' origins; the result is [series][origin] → horizon values. */
export function predictLstm(model: tf.LayersModel, cfg: LstmConfig, series: readonly LstmSeriesInput[]): Float32Array[][] {
  const b = predictionBatch(series, cfg);
  const out = new Float32Array(b.n * cfg.horizon);
  const CHUNK = 2048;
  for (let from = 0; from < b.n; from += CHUNK) {
    const to = Math.min(b.n, from + CHUNK);
    const y = tf.tidy(() => {
      const [xs, xc] = tensors(b, cfg, from, to);
      return model.predict([xs, xc]) as tf.Tensor;
    });
    out.set(y.dataSync() as Float32Array, from * cfg.horizon);
    y.dispose();
  }
  return decodePredictions(series, b, out, cfg.horizon);
}
