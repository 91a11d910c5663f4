// Saving and loading the LSTM for the catalog without loading tfjs on the caller's thread.
//
// The worker already returns the model as a JSON value (weights base64); saving is choosing a
// column format, loading is validating it. Forecasting with a loaded value goes through
// predictInWorker (or forecastMany's `lstm.pretrained`), so a restart does not retrain.

import { ModelFormatError } from './errors.js';
import type { SavedLstm } from './lstm-net.js';

const FORMAT = 'pgtide-lstm';
const VERSION = 1;

/** A value for a jsonb column (`'json'`, default) or a bytea column (`'bytes'`: UTF-8 JSON). */
export function saveModelValue(model: SavedLstm, as?: 'json'): SavedLstm;
export function saveModelValue(model: SavedLstm, as: 'bytes'): Buffer;
export function saveModelValue(model: SavedLstm, as: 'json' | 'bytes' = 'json'): SavedLstm | Buffer {
  const checked = loadModelValue(model);
  return as === 'bytes' ? Buffer.from(JSON.stringify(checked), 'utf8') : checked;
}

/** Accepts what saveModel produced: the object, its JSON text, or its bytes. Throws ModelFormatError. */
export function loadModelValue(v: unknown): SavedLstm {
  let o: unknown = v;
  if (v instanceof Uint8Array) o = Buffer.from(v).toString('utf8');
  if (typeof o === 'string') {
    try { o = JSON.parse(o); } catch { throw new ModelFormatError('saved model is not valid JSON'); }
  }
  const s = o as Partial<SavedLstm> | null;
  if (!s || typeof s !== 'object' || s.format !== FORMAT) throw new ModelFormatError('not a pgtide LSTM model');
  if (s.version !== VERSION) throw new ModelFormatError(`unsupported model version ${String(s.version)}`);
  if (!s.config || !Array.isArray(s.weights) || s.weights.some((w) => !Array.isArray(w.shape) || typeof w.data !== 'string')) {
    throw new ModelFormatError('saved model lacks config or weights');
  }
  return s as SavedLstm;
}
