// The forecasting pipeline: clean → events → seasons → models → backtest → ensemble → conformal.
//
// For every series the last C steps (the calibration window, at most MAX_CALIBRATION_STEPS) are
// held out of fitting: the statistical models are fitted on y[0..n−C) and the global LSTM is
// trained on targets before n−C. Each model then forecasts from every origin in the window
// (rolling origin, one filter pass) and from the end of the history. Backtest errors per model and
// horizon step give the ensemble weights (forward selection on absolute error over steps k±2); the
// ensemble's residuals over the same origins calibrate the quantiles (conformal.ts). Nothing fitted ever sees the residuals it is
// judged by, except the choice of ensemble weights, a few numbers per step.
// A level shift inside the window (detectLevelShift) restricts that judging to the origins after
// it, when there are enough: what the models did before a doubling says little about now.
// Degradation: no history → restore seed or zero; too little → naive with approximate intervals;
// all zero → zero; a model that throws (or the LSTM worker failing) is skipped and noted.

import type { DutyCycle } from './duty-cycle.js';
import { calibrate, applyOffsets, SCALE_FLOOR } from './conformal.js';
import {
  eventsFor, learnMultipliers, multiplierPath, eventSteps, type ScheduledEvent,
} from './events.js';
import { HoltWinters } from './holt-winters.js';
import { DEFAULT_LSTM_CONFIG, type LstmConfig, type LstmSeriesInput } from './lstm-data.js';
import type { SavedLstm } from './lstm-net.js';
import { SeasonalNaive } from './naive.js';
import type { PointModel } from './point-model.js';
import { detectSeasons } from './seasonality.js';
import { seedForecast, type RestoreSeed } from './seed.js';
import { cleanValues, mean, normalQuantile } from './series.js';
import { DEFAULT_QUANTILES, quantileKey, startMs, type Forecast, type Series } from './types.js';
import { predictInWorker, trainInWorker } from './worker-client.js';

export type ModelChoice = 'auto' | 'naive' | 'hw' | 'lstm' | 'ensemble';
export const MODEL_CHOICES: readonly ModelChoice[] = ['auto', 'naive', 'hw', 'lstm', 'ensemble'];

/** Largest calibration window, in steps (three weeks of hourly data). */
export const MAX_CALIBRATION_STEPS = 672;
/** Share of a short history used for calibration. */
const CALIBRATION_SHARE = 0.4;
/** Below this many values there is nothing to fit: naive or the restore seed. */
export const MIN_HISTORY = 8;
/** Rounds of forward ensemble selection: weights are multiples of 1/SELECT_ROUNDS. */
const SELECT_ROUNDS = 10;
/** Horizon steps over which backtest errors are smoothed (each side). */
const SMOOTH_STEPS = 2;
/** Fewest LSTM training origins per series before it is worth training. */
const LSTM_MIN_ORIGINS = 48;
/** Longest horizon the direct multi-horizon LSTM is built for. */
const LSTM_MAX_HORIZON = 168;
/** A level shift is a change of the mean log load of at least this much (log 1.5) between a window and the one before it. */
export const SHIFT_MIN_LOG = Math.log(1.5);
/** Fewest backtest origins after a detected shift for the ensemble to be judged on them alone. */
const SHIFT_MIN_ORIGINS = 48;
/** With too little history the relative spread of the uncalibrated intervals (per unit z). */
const FALLBACK_REL_SIGMA = 0.5;

export interface SeriesInput {
  name: string;
  series: Series;
  table?: string;
  restore?: RestoreSeed;
  /** Season lengths in steps; detected when absent. */
  seasons?: number[];
}

export interface LstmOptions extends Partial<LstmConfig> {
  /** A saved model (saveModel/catalog value): forecast with it instead of training. */
  pretrained?: unknown;
  timeoutMs?: number;
  backend?: string;
}

export interface PredictOptions {
  horizon: number;
  quantiles?: readonly number[];
  model?: ModelChoice;
  events?: readonly ScheduledEvent[];
  /** Maximum calibration window in steps. */
  calibrationSteps?: number;
  /** false: statistical models only. */
  lstm?: false | LstmOptions;
  seed?: number;
  now?: () => number;
  /** Paces LSTM training (set by whoever knows how busy the host is); absent = full speed. */
  duty?: DutyCycle;
}

export interface PredictResult {
  forecasts: Record<string, Forecast>;
  /** The LSTM trained (or loaded) for this run, to store in the catalog. */
  lstmModel?: SavedLstm;
  timings: { totalMs: number; statsMs: number; lstmMs: number };
  lstmBackend?: string;
}

interface Prepared {
  name: string;
  t0: number;
  stepMs: number;
  n: number;
  y: Float64Array;
  seasons: number[];
  notes: string[];
  futureMult: Float64Array;
  fitEnd: number;
  origins: number[];
  /** Step where a level shift inside the calibration window was detected, if any. */
  shiftAt?: number;
  /** forecasts per model name, aligned with origins. */
  fc: Map<string, Float64Array[]>;
  fallback?: Forecast;
}

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

function prepare(inp: SeriesInput, opts: PredictOptions, levels: readonly number[]): Prepared {
  const H = opts.horizon;
  const t0 = startMs(inp.series);
  const stepMs = inp.series.stepMs;
  const clean = cleanValues(inp.series.values);
  const n = clean.y.length;
  const notes = [...clean.notes];
  const base: Prepared = {
    name: inp.name, t0, stepMs, n, y: clean.y, seasons: [], notes,
    futureMult: new Float64Array(H).fill(1), fitEnd: n, origins: [], fc: new Map(),
  };
  const tEnd = t0 + n * stepMs;
  const known = n - clean.missingCount;
  if (known === 0 || n < MIN_HISTORY) {
    if (inp.restore) {
      const f = seedForecast(inp.restore, tEnd, stepMs, H, levels);
      f.notes.unshift(...notes, known === 0 ? 'no history' : `too little history (${n} steps)`);
      base.fallback = f;
    } else {
      base.fallback = flatFallback(clean.y, tEnd, stepMs, H, levels, [...notes,
        known === 0 ? 'no history and no restore request: forecasting zero' : `too little history (${n} steps < ${MIN_HISTORY}): fell back to naive (last values), intervals uncalibrated`]);
    }
    return base;
  }
  if (clean.y.every((v) => v === 0)) {
    base.fallback = flatFallback(clean.y, tEnd, stepMs, H, levels, [...notes, 'all-zero history: forecasting zero']);
    base.fallback.model = 'zero';
    return base;
  }
  let seasons = inp.seasons ?? detectSeasons(clean.y).seasons;
  // Events: learn multipliers, divide past occurrences out, remember future ones.
  const evs = eventsFor(opts.events ?? [], inp.table);
  if (evs.length) {
    const longS = seasons.length ? Math.max(...seasons) : Math.max(1, Math.round(86_400_000 / stepMs));
    const mults = learnMultipliers(clean.y, t0, stepMs, evs, longS);
    const y = Float64Array.from(clean.y);
    const past = multiplierPath(evs, mults, t0, stepMs, n);
    for (let i = 0; i < n; i++) y[i] = y[i]! / past[i]!;
    base.y = y;
    base.futureMult = multiplierPath(evs, mults, tEnd, stepMs, H);
    // Recurring campaigns can look like a season of their own; detect again without them.
    if (!inp.seasons) seasons = detectSeasons(y).seasons;
    for (const m of mults.values()) {
      const future = evs.filter((e) => e.name === m.name && eventSteps(e, tEnd, stepMs, H)[1] > eventSteps(e, tEnd, stepMs, H)[0]);
      const how = m.source === 'learned' ? `learned from ${m.occurrences} past occurrence(s)`
        : m.source === 'expected' ? 'from EXPECT (no past occurrence)' : 'no past occurrence and no EXPECT: 1';
      const given = evs.find((e) => e.name === m.name && e.multiplier !== undefined)?.multiplier;
      const override = m.source === 'learned' && given !== undefined && Math.abs(given - m.multiplier) / given > 0.2
        ? ` (overrides EXPECT ${given})` : '';
      notes.push(`event ${m.name}: multiplier ${fmt(m.multiplier)} ${how}${override}${future.length ? `; applied to ${future.length} upcoming occurrence(s)` : ''}`);
    }
  }
  base.seasons = seasons;
  notes.push(seasons.length ? `seasons ${inp.seasons ? 'given' : 'detected'}: ${seasons.join(', ')} steps` : 'no season detected');
  const maxC = Math.min(opts.calibrationSteps ?? MAX_CALIBRATION_STEPS, MAX_CALIBRATION_STEPS);
  const C = Math.max(1, Math.min(maxC, Math.floor(n * CALIBRATION_SHARE)));
  base.fitEnd = n - C;
  for (let o = base.fitEnd; o <= n; o++) base.origins.push(o);
  const shift = detectLevelShift(base.y, base.fitEnd, seasons);
  if (shift !== undefined) base.shiftAt = shift;
  return base;
}

/**
 * Level-shift detection inside the calibration window: for every candidate step b, the mean log
 * load of [b, b + L) against the same phases one long season (L = the longest season, or a day)
 * earlier, so the weekly profile cancels; a partial last window is compared phase by phase too.
 * Among the b whose change is at least SHIFT_MIN_LOG the one with the largest change × √window
 * wins (a full window right at the shift beats the noisy partial ones after it). Short bursts (a flash crowd,
 * a campaign) move a window's mean far less than that.
 */
export function detectLevelShift(y: Float64Array, from: number, seasons: readonly number[]): number | undefined {
  const n = y.length;
  const L = seasons.length ? Math.max(...seasons) : 24;
  const S = seasons.length ? Math.min(...seasons) : 24;
  if (n - from < S || from < L) return undefined;
  const eps = 0.05 * mean(y) + 1e-9;
  const pre = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) pre[i + 1] = pre[i]! + Math.log(y[i]! + eps);
  let best: number | undefined;
  let bestScore = 0;
  for (let b = Math.max(from, L); b + S <= n; b++) {
    const e = Math.min(n, b + L);
    const len = e - b;
    const d = Math.abs((pre[e]! - pre[b]!) / len - (pre[e - L]! - pre[b - L]!) / len);
    // Longer windows are surer: among changes above the minimum, the largest d·√len wins.
    const score = d * Math.sqrt(len);
    if (d >= SHIFT_MIN_LOG && score > bestScore) { bestScore = score; best = b; }
  }
  return best;
}

function flatFallback(y: Float64Array, t0: number, stepMs: number, H: number, levels: readonly number[], notes: string[]): Forecast {
  const tail = y.subarray(Math.max(0, y.length - 3));
  const point = tail.length ? mean(tail) : 0;
  const steps = [];
  for (let k = 0; k < H; k++) {
    const q: Record<string, number> = {};
    for (const p of [...levels].sort((a, b) => a - b)) q[quantileKey(p)] = point * Math.exp(FALLBACK_REL_SIGMA * normalQuantile(p));
    steps.push({ t: t0 + k * stepMs, mean: point, quantiles: q });
  }
  return { steps, model: point === 0 && y.every((v) => v === 0) ? 'zero' : 'naive', notes };
}

function statModels(choice: ModelChoice, p: Prepared): PointModel[] {
  const ms: PointModel[] = [];
  const naiveLong = new SeasonalNaive('long');
  ms.push(naiveLong);
  if (p.seasons.length > 1) ms.push(new SeasonalNaive('short'));
  if (choice !== 'naive') ms.push(new HoltWinters());
  return ms;
}

function runStats(p: Prepared, choice: ModelChoice, H: number): void {
  for (const m of statModels(choice, p)) {
    try {
      m.fit(p.y, p.fitEnd, p.seasons);
      const name = m.name;
      if (p.fc.has(name)) continue; // two naive variants with the same season
      p.fc.set(name, m.forecastFrom(p.y, p.origins, H));
      if (m instanceof HoltWinters) p.notes.push(m.describe());
    } catch (err) {
      p.notes.push(`${m.name} failed (${(err as Error).message}): skipped`);
    }
  }
}

/** Forecasts many series at once (one global LSTM for all of them). Never throws for bad data. */
export async function forecastMany(inputs: readonly SeriesInput[], opts: PredictOptions): Promise<PredictResult> {
  const now = opts.now ?? Date.now;
  const tStart = now();
  const H = Math.max(1, Math.floor(opts.horizon));
  const levels = [...new Set((opts.quantiles ?? DEFAULT_QUANTILES).map((q) => Number(q)))].sort((a, b) => a - b);
  const choice = opts.model ?? 'auto';
  const prepared: Prepared[] = [];
  for (const inp of inputs) {
    const p = prepare(inp, { ...opts, horizon: H }, levels);
    if (!p.fallback) runStats(p, choice, H);
    prepared.push(p);
    await yieldLoop();
  }
  const statsMs = now() - tStart;

  // The global LSTM: trained in a worker on every eligible series at once.
  let lstmModel: SavedLstm | undefined;
  let lstmBackend: string | undefined;
  const tL = now();
  const wantLstm = opts.lstm !== false && (choice === 'auto' || choice === 'ensemble' || choice === 'lstm');
  if (wantLstm) {
    const lo: LstmOptions = opts.lstm || {};
    const cfg: LstmConfig = { ...DEFAULT_LSTM_CONFIG, ...stripExtras(lo), horizon: H, seed: lo.seed ?? opts.seed ?? DEFAULT_LSTM_CONFIG.seed };
    const eligible = prepared.filter((p) => !p.fallback && p.fitEnd - H - cfg.window >= LSTM_MIN_ORIGINS);
    for (const p of prepared) if (!p.fallback && !eligible.includes(p)) p.notes.push('too little history for the LSTM: skipped');
    if (H > LSTM_MAX_HORIZON) {
      for (const p of eligible) p.notes.push(`horizon ${H} > ${LSTM_MAX_HORIZON}: LSTM skipped`);
    } else if (eligible.length) {
      const inputsL: LstmSeriesInput[] = eligible.map((p) => ({
        y: Float32Array.from(p.y), start: p.t0, stepMs: p.stepMs, seasons: p.seasons, trainEnd: p.fitEnd, origins: p.origins,
      }));
      try {
        const res = lo.pretrained !== undefined
          ? await predictInWorker(lo.pretrained, inputsL, { timeoutMs: lo.timeoutMs ?? 120_000, ...(lo.backend ? { backend: lo.backend } : {}) })
          : await trainInWorker(inputsL, cfg, { timeoutMs: lo.timeoutMs ?? 120_000, ...(lo.backend ? { backend: lo.backend } : {}), ...(opts.duty ? { duty: opts.duty } : {}) });
        if (res.saved.config.horizon !== H) throw new Error(`saved LSTM forecasts ${res.saved.config.horizon} steps, ${H} asked`);
        lstmModel = res.saved;
        lstmBackend = res.backend;
        eligible.forEach((p, i) => {
          p.fc.set('lstm', res.predictions[i]!.map((f) => Float64Array.from(f)));
          p.notes.push(...res.notes);
          if (lo.pretrained !== undefined) restrictToUnseen(p, res.saved.trainedUntil);
        });
      } catch (err) {
        for (const p of eligible) p.notes.push(`LSTM unavailable (${(err as Error).message}): using the statistical models`);
      }
    }
  }
  const lstmMs = now() - tL;

  const forecasts: Record<string, Forecast> = {};
  for (const p of prepared) {
    try {
      forecasts[p.name] = p.fallback ?? combine(p, choice, H, levels);
    } catch (err) {
      forecasts[p.name] = flatFallback(p.y, p.t0 + p.n * p.stepMs, p.stepMs, H, levels,
        [...p.notes, `forecast failed (${(err as Error).message}): fell back to naive`]);
    }
    await yieldLoop();
  }
  return { forecasts, ...(lstmModel ? { lstmModel } : {}), ...(lstmBackend ? { lstmBackend } : {}), timings: { totalMs: now() - tStart, statsMs, lstmMs } };
}

/**
 * The statistical part alone, synchronously (no LSTM, no worker): what the per-series Forecaster
 * classes use. `model` 'auto'/'ensemble' combine the naive variants and Holt-Winters.
 */
export function forecastStatistical(inp: SeriesInput, opts: PredictOptions): Forecast {
  const H = Math.max(1, Math.floor(opts.horizon));
  const levels = [...new Set((opts.quantiles ?? DEFAULT_QUANTILES).map(Number))].sort((a, b) => a - b);
  const choice = opts.model === 'lstm' ? 'hw' : opts.model ?? 'auto';
  const p = prepare(inp, { ...opts, horizon: H }, levels);
  if (p.fallback) return p.fallback;
  runStats(p, choice, H);
  return combine(p, choice, H, levels);
}

function stripExtras(lo: LstmOptions): Partial<LstmConfig> {
  const { pretrained: _p, timeoutMs: _t, backend: _b, ...rest } = lo;
  return rest;
}

/** A reloaded LSTM has seen part of the window: backtest only on origins after its training. */
function restrictToUnseen(p: Prepared, trainedUntil: number): void {
  const first = p.origins.findIndex((o) => p.t0 + o * p.stepMs > trainedUntil);
  if (first > 0 && p.origins.length - first > 24) {
    p.origins = p.origins.slice(first);
    for (const [k, v] of p.fc) p.fc.set(k, v.slice(first));
    p.notes.push('reloaded LSTM: backtest restricted to origins after its training data');
  } else if (first !== 0) {
    p.fc.delete('lstm');
    p.notes.push('reloaded LSTM was trained on this window (too little later data to judge it): not used');
  }
}

function combine(p: Prepared, choice: ModelChoice, H: number, levels: readonly number[]): Forecast {
  // After a level shift, only origins after it say how the models do now: judge (weights and
  // intervals) on those when there are enough of them.
  if (p.shiftAt !== undefined) {
    const first = p.origins.findIndex((o) => o >= p.shiftAt!);
    if (first > 0 && p.origins.length - first > SHIFT_MIN_ORIGINS) {
      p.origins = p.origins.slice(first);
      for (const [k, v] of p.fc) p.fc.set(k, v.slice(first));
      p.notes.push(`level shift detected ${p.n - p.shiftAt} steps ago: models judged on the ${p.origins.length - 1} origins since`);
    }
  }
  const { y, n, origins } = p;
  const names = [...p.fc.keys()];
  const last = origins.length - 1; // origins[last] === n: the real forecast
  // Backtest MSE per model and step.
  const mse = new Map<string, Float64Array>();
  const mae = new Map<string, number>();
  for (const name of names) {
    const f = p.fc.get(name)!;
    const raw = new Float64Array(H), cnt = new Float64Array(H);
    // Absolute errors: a flash crowd in the window must not decide the weights by itself.
    let absSum = 0, absN = 0;
    for (let i = 0; i < last; i++) {
      const o = origins[i]!;
      for (let k = 0; k < H && o + k < n; k++) {
        const e = y[o + k]! - f[i]![k]!;
        raw[k] += Math.abs(e); cnt[k]++;
        absSum += Math.abs(e); absN++;
      }
    }
    const sm = new Float64Array(H);
    for (let k = 0; k < H; k++) {
      let s = 0, c = 0;
      for (let j = Math.max(0, k - SMOOTH_STEPS); j <= Math.min(H - 1, k + SMOOTH_STEPS); j++) { s += raw[j]!; c += cnt[j]!; }
      sm[k] = c > 0 ? s / c : NaN;
    }
    mse.set(name, sm);
    mae.set(name, absN ? absSum / absN : NaN);
  }
  // Which models may take part.
  let pool: string[];
  let label: string;
  const naiveNames = names.filter((x) => x === 'naive' || x.startsWith('snaive'));
  const bestOf = (cands: string[]): string => cands.reduce((a, b) => ((mae.get(b) ?? Infinity) < (mae.get(a) ?? Infinity) ? b : a));
  if (choice === 'naive') { pool = [bestOf(naiveNames)]; }
  else if (choice === 'hw') { pool = names.includes('hw') ? ['hw'] : [bestOf(naiveNames)]; }
  else if (choice === 'lstm') {
    pool = names.includes('lstm') ? ['lstm'] : names.includes('hw') ? ['hw'] : [bestOf(naiveNames)];
    if (!names.includes('lstm')) p.notes.push(`LSTM not available: used ${pool[0]}`);
  } else { pool = names; }
  if (choice === 'hw' && !names.includes('hw')) p.notes.push(`Holt-Winters not available: used ${pool[0]}`);
  const haveBacktest = last > 0;
  // Weights per step: forward ensemble selection (Caruana et al. 2004) on the backtest — add, with
  // replacement, the model that most lowers the absolute error of the running average, stop when
  // nothing helps. Unlike inverse-error weights this accounts for correlated errors: a weekly naive
  // forecast that is merely a noisier copy of Holt-Winters gets no weight.
  const W = new Map<string, Float64Array>(pool.map((m) => [m, new Float64Array(H)]));
  for (let k = 0; k < H; k++) {
    const rows: [number, number][] = [];
    for (let i = 0; i < last; i++) {
      for (let j = Math.max(0, k - SMOOTH_STEPS); j <= Math.min(H - 1, k + SMOOTH_STEPS); j++) {
        if (origins[i]! + j < n) rows.push([i, j]);
      }
    }
    if (!haveBacktest || rows.length === 0 || pool.length === 1) {
      for (const m of pool) W.get(m)![k] = 1 / pool.length;
      continue;
    }
    const Y = Float64Array.from(rows, ([i, j]) => y[origins[i]! + j]!);
    const F = new Map(pool.map((m) => [m, Float64Array.from(rows, ([i, j]) => p.fc.get(m)![i]![j]!)]));
    const sum = new Float64Array(rows.length);
    const counts = new Map(pool.map((m) => [m, 0]));
    let total = 0, current = Infinity;
    for (let round = 0; round < SELECT_ROUNDS; round++) {
      let bestM = '', bestErr = Infinity;
      for (const m of pool) {
        const f = F.get(m)!;
        let err = 0;
        for (let r = 0; r < rows.length; r++) err += Math.abs(Y[r]! - (sum[r]! + f[r]!) / (total + 1));
        if (err < bestErr) { bestErr = err; bestM = m; }
      }
      if (bestErr >= current) break;
      current = bestErr;
      const f = F.get(bestM)!;
      for (let r = 0; r < rows.length; r++) sum[r] += f[r]!;
      counts.set(bestM, counts.get(bestM)! + 1);
      total++;
    }
    for (const m of pool) W.get(m)![k] = counts.get(m)! / total;
  }
  const used = pool.filter((m) => W.get(m)!.some((w) => w > 0));
  if (used.length > 1) {
    const avg = used.map((m) => `${m}:${fmt(mean(W.get(m)!))}`);
    label = `ensemble(${avg.join(',')})`;
  } else {
    label = used[0] ?? pool[0]!;
  }
  if (choice === 'auto' && used.length === 1 && pool.length > 1) p.notes.push(`auto: ${label} carried all the weight`);
  // Ensemble forecasts at every origin.
  const ens: Float64Array[] = origins.map((_, i) => {
    const f = new Float64Array(H);
    for (const m of used) {
      const fm = p.fc.get(m)![i]!, w = W.get(m)!;
      for (let k = 0; k < H; k++) f[k] += w[k]! * fm[k]!;
    }
    return f;
  });
  // Conformal calibration on the ensemble's backtest residuals.
  const s0 = Math.max(SCALE_FLOOR * mean(y, p.fitEnd, n), 1e-9);
  const scores: number[][] = Array.from({ length: H }, () => []);
  for (let i = 0; i < last; i++) {
    const o = origins[i]!;
    for (let k = 0; k < H && o + k < n; k++) {
      const f = ens[i]![k]!;
      scores[k]!.push((y[o + k]! - f) / (f + s0));
    }
  }
  const total = scores.reduce((a, s) => a + s.length, 0);
  if (total < 20) p.notes.push(`only ${total} backtest residuals: intervals approximate`);
  const cal = calibrate(scores, levels);
  const tEnd = p.t0 + n * p.stepMs;
  const steps = [];
  const fin = ens[last]!;
  for (let k = 0; k < H; k++) {
    const m = p.futureMult[k]!;
    const point = Math.max(0, fin[k]!);
    const qs = applyOffsets(point, point + s0, cal.offsets[k]!, levels);
    const q: Record<string, number> = {};
    levels.forEach((lv, j) => { q[quantileKey(lv)] = qs[j]! * m; });
    steps.push({ t: tEnd + k * p.stepMs, mean: point * m, quantiles: q });
  }
  if (p.futureMult.some((v) => v !== 1)) p.notes.push('event multipliers applied to the forecast');
  const components: Record<string, number[]> = {};
  for (const [name, f] of p.fc) components[name] = Array.from(f[last]!, (v, k) => Math.max(0, v) * p.futureMult[k]!);
  return { steps, model: label, notes: p.notes, components };
}
