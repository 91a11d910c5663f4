// Feature windows of the global LSTM (pure, no tfjs): per-series scaling, calendar and lag features.
//
// One model serves every series (DeepAR / MQ-RNN style): each sample is one series at one origin o.
//   scale      = mean of the last max(window, long season) values before o (1 if that is ~0),
//                so a partition at 10 qps and one at 10,000 qps look alike to the net;
//   sequence   = the last `window` steps: [y/scale, y one long season earlier/scale,
//                sin/cos hour-of-day, sin/cos hour-of-week];
//   future     = per horizon step k: [long-season naive/scale, short-season naive/scale, calendar(4)];
//   target     = (y[o+k] − long-season naive) / scale.
// The net thus learns a correction to the seasonal naive forecast, starts from it (zero-initialized
// output layer) and cannot do worse than it by much even when trained briefly.

export interface LstmConfig {
  /** Steps of history fed to the recurrent layer. */
  window: number;
  /** Steps forecast at once (direct multi-horizon output). */
  horizon: number;
  units: number;
  hidden: number;
  epochs: number;
  /** Training windows sampled across all series and origins. */
  samples: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Safety net: stop training after this many ms (notes say so). */
  maxTrainMs: number;
}

export const DEFAULT_LSTM_CONFIG: Omit<LstmConfig, 'horizon'> = {
  window: 24,
  units: 24,
  hidden: 48,
  epochs: 12,
  samples: 3000,
  batchSize: 256,
  learningRate: 0.01,
  seed: 7,
  maxTrainMs: 40_000,
};

export const SEQ_FEATURES = 6;
export const COV_FEATURES = 6;

/** One series as the LSTM sees it: gap-filled, events divided out. */
export interface LstmSeriesInput {
  y: Float64Array | Float32Array | number[];
  start: number;
  stepMs: number;
  seasons: number[];
  /** Training targets must lie before this index. */
  trainEnd: number;
  /** Origins (index of the first target) to forecast from. */
  origins: number[];
}

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

function calendar(t: number, out: Float32Array, at: number): void {
  const d = (((t % DAY_MS) + DAY_MS) % DAY_MS) / DAY_MS;
  // 1970-01-01 was a Thursday; phase 0 is Monday 00:00 UTC.
  const w = ((((t - 4 * DAY_MS) % WEEK_MS) + WEEK_MS) % WEEK_MS) / WEEK_MS;
  out[at] = Math.sin(2 * Math.PI * d);
  out[at + 1] = Math.cos(2 * Math.PI * d);
  out[at + 2] = Math.sin(2 * Math.PI * w);
  out[at + 3] = Math.cos(2 * Math.PI * w);
}

function seasonalNaive(y: ArrayLike<number>, o: number, k: number, m: number): number {
  const idx = o + k - m * Math.ceil((k + 1) / m);
  return idx >= 0 ? y[idx]! : y[0]!;
}

export function longSeason(seasons: readonly number[]): number {
  return seasons.length ? Math.max(...seasons) : 1;
}
export function shortSeason(seasons: readonly number[]): number {
  return seasons.length ? Math.min(...seasons) : 1;
}

/** Writes the features of (series, origin) into the given row slots; returns the scale. */
export function encodeSample(
  s: LstmSeriesInput, o: number, cfg: Pick<LstmConfig, 'window' | 'horizon'>,
  seq: Float32Array, seqAt: number, cov: Float32Array, covAt: number, base: Float32Array, baseAt: number,
): number {
  const { window: L, horizon: H } = cfg;
  const y = s.y;
  const mL = longSeason(s.seasons), mS = shortSeason(s.seasons);
  const span = Math.min(o, Math.max(L, mL));
  let sum = 0;
  for (let i = o - span; i < o; i++) sum += y[i]!;
  let scale = span > 0 ? sum / span : 0;
  if (!(scale > 1e-9)) scale = 1;
  const tmp = new Float32Array(4);
  for (let j = 0; j < L; j++) {
    const i = o - L + j;
    const at = seqAt + j * SEQ_FEATURES;
    seq[at] = (i >= 0 ? y[i]! : y[0]!) / scale;
    // The same phase one long season earlier: with it the net sees how far the recent past ran
    // above or below last week, the deviation that persists into the next hours.
    seq[at + 1] = (i - mL >= 0 ? y[i - mL]! : i >= 0 ? y[i]! : y[0]!) / scale;
    calendar(s.start + i * s.stepMs, tmp, 0);
    seq[at + 2] = tmp[0]!; seq[at + 3] = tmp[1]!; seq[at + 4] = tmp[2]!; seq[at + 5] = tmp[3]!;
  }
  for (let k = 0; k < H; k++) {
    const at = covAt + k * COV_FEATURES;
    const nl = seasonalNaive(y, o, k, mL) / scale;
    cov[at] = nl;
    cov[at + 1] = seasonalNaive(y, o, k, mS) / scale;
    calendar(s.start + (o + k) * s.stepMs, tmp, 0);
    cov[at + 2] = tmp[0]!; cov[at + 3] = tmp[1]!; cov[at + 4] = tmp[2]!; cov[at + 5] = tmp[3]!;
    base[baseAt + k] = nl;
  }
  return scale;
}

export interface Batch {
  n: number;
  seq: Float32Array;
  cov: Float32Array;
  base: Float32Array;
  scale: Float32Array;
  target?: Float32Array;
}

function alloc(n: number, cfg: Pick<LstmConfig, 'window' | 'horizon'>, withTarget: boolean): Batch {
  return {
    n,
    seq: new Float32Array(n * cfg.window * SEQ_FEATURES),
    cov: new Float32Array(n * cfg.horizon * COV_FEATURES),
    base: new Float32Array(n * cfg.horizon),
    scale: new Float32Array(n),
    ...(withTarget ? { target: new Float32Array(n * cfg.horizon) } : {}),
  };
}

/**
 * Samples training windows uniformly over all (series, origin) pairs whose targets lie before the
 * series' trainEnd. `rng` is injected so a seed reproduces the same model.
 */
export function trainingBatch(series: readonly LstmSeriesInput[], cfg: LstmConfig, rng: () => number): Batch {
  const H = cfg.horizon, L = cfg.window;
  const ranges = series.map((s) => {
    const hi = s.trainEnd - H; // inclusive origin bound
    // Origins with a full long season behind them, when the history allows it.
    const lo = Math.min(Math.max(L, longSeason(s.seasons)), hi);
    return hi >= L ? [lo, hi] as const : undefined;
  });
  const weights = ranges.map((r) => (r ? r[1] - r[0] + 1 : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) return alloc(0, cfg, true);
  const n = Math.min(cfg.samples, total);
  const b = alloc(n, cfg, true);
  for (let i = 0; i < n; i++) {
    let r = Math.floor(rng() * total);
    let si = 0;
    while (r >= weights[si]!) { r -= weights[si]!; si++; }
    const s = series[si]!;
    const o = ranges[si]![0] + r;
    const scale = encodeSample(s, o, cfg, b.seq, i * L * SEQ_FEATURES, b.cov, i * H * COV_FEATURES, b.base, i * H);
    b.scale[i] = scale;
    for (let k = 0; k < H; k++) b.target![i * H + k] = s.y[o + k]! / scale - b.base[i * H + k]!;
  }
  return b;
}

/** The prediction inputs for every series' requested origins, in order. */
export function predictionBatch(series: readonly LstmSeriesInput[], cfg: Pick<LstmConfig, 'window' | 'horizon'>): Batch {
  const n = series.reduce((a, s) => a + s.origins.length, 0);
  const b = alloc(n, cfg, false);
  let i = 0;
  for (const s of series) {
    for (const o of s.origins) {
      b.scale[i] = encodeSample(s, o, cfg, b.seq, i * cfg.window * SEQ_FEATURES, b.cov, i * cfg.horizon * COV_FEATURES, b.base, i * cfg.horizon);
      i++;
    }
  }
  return b;
}

/** Turns net outputs (scaled corrections) back into non-negative forecasts, grouped per series. */
export function decodePredictions(
  series: readonly LstmSeriesInput[], b: Batch, out: Float32Array, horizon: number,
): Float32Array[][] {
  const res: Float32Array[][] = [];
  let i = 0;
  for (const s of series) {
    const per: Float32Array[] = [];
    for (let j = 0; j < s.origins.length; j++, i++) {
      const f = new Float32Array(horizon);
      for (let k = 0; k < horizon; k++) f[k] = Math.max(0, (out[i * horizon + k]! + b.base[i * horizon + k]!) * b.scale[i]!);
      per.push(f);
    }
    res.push(per);
  }
  return res;
}
