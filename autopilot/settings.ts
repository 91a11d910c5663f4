// Autopilot settings: names, defaults, units and validation; persisted as "autopilot.*" rows of pgtide.settings.
//
// Loads are load-score units per second (predictor/load-score.ts: one unit ≈ one simple indexed
// read), so thresholds do not change meaning when the forecast step changes. Every setting can be
// changed at run time with `SET AUTOPILOT name = value`; the mode with `SET AUTOPILOT off|recommend|auto`.
import type { Catalog } from '../config/catalog.js';
import { InvalidThresholdsError, validateThresholds, type Thresholds } from '../planner/index.js';
import { AutopilotError } from './errors.js';

export type AutopilotMode = 'off' | 'recommend' | 'auto';
export const MODES: readonly AutopilotMode[] = ['off', 'recommend', 'auto'];

export interface AutopilotSettings {
  mode: AutopilotMode;
  /** Seconds between forecast+plan runs on the leader. */
  interval_s: number;
  /** Forecast step (history is summed into steps of this length), seconds. */
  step_s: number;
  /** Forecast horizon in steps. */
  horizon: number;
  /** Most history steps read per partition. */
  history_steps: number;
  /** 'on' trains (or reuses) the global LSTM in a worker; 'off' uses the statistical models only. */
  lstm: 'on' | 'off';
  lstm_epochs: number;
  lstm_samples: number;
  /** Retrain the stored LSTM after this many hours (it is reused in between, also after a restart). */
  retrain_h: number;
  /** Optional HTTP event feed (JSON list of events), fetched on every run; '' = none. */
  event_feed: string;
  /**
   * CPU priority of the forecast thread: 'low' (SCHED_IDLE, else nice 19: only idle CPU, never
   * slowing queries) or 'normal' (competes like any thread: use it when the box is never idle,
   * where 'low' can starve the forecast for minutes).
   */
  forecast_priority: 'low' | 'normal';
  /**
   * Where the forecast runs: 'process' (default: a child process started at that priority, so every
   * thread of it, V8's GC and compiler threads too, yields the CPU) or 'thread' (a worker thread of
   * the proxy: cheaper to start, but V8's helper threads it uses run at normal priority).
   */
  forecast_in: 'process' | 'thread';
  partition_max_load: number;
  partition_min_load: number;
  /** Capacity of every shard, load units/s. */
  shard_capacity: number;
  shard_max_utilization: number;
  shard_min_utilization: number;
  partition_max_bytes: number;
  target_p99_ms: number;
  base_p99_ms: number;
  /** No undo (merge back, move back) within this many seconds. */
  cooldown_s: number;
  /** Measured mover copy throughput, bytes/s, and cutover + per-job overhead, seconds. */
  mover_bytes_per_s: number;
  cutover_s: number;
  /** Auto mode applies at most this many due steps per run. */
  max_steps_per_run: number;
}

export const DEFAULTS: AutopilotSettings = {
  mode: 'recommend',
  interval_s: 60,
  step_s: 900,
  horizon: 48,
  history_steps: 2016,
  lstm: 'on',
  lstm_epochs: 12,
  lstm_samples: 3000,
  retrain_h: 24,
  event_feed: '',
  forecast_priority: 'low',
  forecast_in: 'process',
  partition_max_load: 1000,
  partition_min_load: 50,
  shard_capacity: 10_000,
  shard_max_utilization: 0.8,
  shard_min_utilization: 0.2,
  partition_max_bytes: 10 * 2 ** 30,
  target_p99_ms: 50,
  base_p99_ms: 5,
  cooldown_s: 7200,
  mover_bytes_per_s: 20e6,
  cutover_s: 5,
  max_steps_per_run: 4,
};

const PREFIX = 'autopilot.';

/** Integer settings and their allowed ranges; the rest of the numbers are positive reals. */
const INTEGER_RANGES: Partial<Record<keyof AutopilotSettings, [number, number]>> = {
  interval_s: [1, 86_400],
  step_s: [1, 86_400],
  horizon: [1, 168],
  history_steps: [16, 20_000],
  lstm_epochs: [1, 200],
  lstm_samples: [16, 100_000],
  max_steps_per_run: [1, 100],
};

/** Settings that take one of a few words. */
const CHOICES: Partial<Record<keyof AutopilotSettings, readonly string[]>> = {
  lstm: ['on', 'off'],
  forecast_priority: ['low', 'normal'],
  forecast_in: ['process', 'thread'],
};

export function settingNames(): string[] {
  return Object.keys(DEFAULTS);
}

/** Parses one `name = value` into a checked value (22023 on anything wrong). */
export function parseSetting(name: string, raw: string): AutopilotSettings[keyof AutopilotSettings] {
  const key = name.toLowerCase() as keyof AutopilotSettings;
  if (!(key in DEFAULTS)) {
    throw new AutopilotError('UNKNOWN_SETTING', `unknown autopilot setting "${name}"`, { sqlstate: '42704', hint: `known: ${settingNames().join(', ')}` });
  }
  const text = raw.trim().replace(/^'(.*)'$/s, '$1');
  if (key === 'mode') {
    if (!MODES.includes(text.toLowerCase() as AutopilotMode)) throw new AutopilotError('BAD_MODE', `autopilot mode must be off, recommend or auto, got "${text}"`, { sqlstate: '22023' });
    return text.toLowerCase() as AutopilotMode;
  }
  const choices = CHOICES[key];
  if (choices) {
    const v = text.toLowerCase();
    if (!choices.includes(v)) throw new AutopilotError('BAD_SETTING', `${key} must be ${choices.join(' or ')}, got "${text}"`, { sqlstate: '22023' });
    return v as AutopilotSettings[keyof AutopilotSettings];
  }
  if (key === 'event_feed') {
    if (text !== '' && !/^https?:\/\/\S+$/i.test(text)) throw new AutopilotError('BAD_SETTING', `event_feed must be an http(s) URL or '', got "${text}"`, { sqlstate: '22023' });
    return text;
  }
  const v = Number(text);
  const range = INTEGER_RANGES[key];
  if (range) {
    if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
      throw new AutopilotError('BAD_SETTING', `${key} must be an integer between ${range[0]} and ${range[1]}, got "${text}"`, { sqlstate: '22023' });
    }
    return v;
  }
  if (text === '' || !Number.isFinite(v) || v < 0) throw new AutopilotError('BAD_SETTING', `${key} must be a non-negative number, got "${text}"`, { sqlstate: '22023' });
  return v;
}

export function thresholdsOf(s: AutopilotSettings): Thresholds {
  return {
    partitionMaxLoad: s.partition_max_load,
    partitionMinLoad: s.partition_min_load,
    shardMaxUtilization: s.shard_max_utilization,
    shardMinUtilization: s.shard_min_utilization,
    partitionMaxBytes: s.partition_max_bytes,
    targetP99Ms: s.target_p99_ms,
    baseP99Ms: s.base_p99_ms,
  };
}

/** Every check the planner makes on thresholds, plus the autopilot's own (22023, nothing changed). */
export function validateSettings(s: AutopilotSettings): void {
  try {
    validateThresholds(thresholdsOf(s));
  } catch (err) {
    if (err instanceof InvalidThresholdsError) throw new AutopilotError('BAD_THRESHOLDS', err.message, { sqlstate: '22023' });
    throw err;
  }
  if (!(s.shard_capacity > 0)) throw new AutopilotError('BAD_THRESHOLDS', `shard_capacity must be positive, got ${s.shard_capacity}`, { sqlstate: '22023' });
  if (!(s.mover_bytes_per_s > 0)) throw new AutopilotError('BAD_THRESHOLDS', `mover_bytes_per_s must be positive, got ${s.mover_bytes_per_s}`, { sqlstate: '22023' });
}

export async function loadSettings(catalog: Catalog): Promise<AutopilotSettings> {
  const { rows } = await catalog.pool.query<{ key: string; value: string }>("SELECT key, value FROM pgtide.settings WHERE key LIKE 'autopilot.%'");
  const s: AutopilotSettings = { ...DEFAULTS };
  for (const r of rows) {
    const name = r.key.slice(PREFIX.length);
    if (!(name in DEFAULTS)) continue;
    try {
      (s as unknown as Record<string, unknown>)[name] = parseSetting(name, r.value);
    } catch {
      // a value written by a newer version: keep the default
    }
  }
  return s;
}

/** Validates the whole settings set with the change applied, then persists the one value. */
export async function saveSetting(catalog: Catalog, name: string, raw: string): Promise<AutopilotSettings> {
  const value = parseSetting(name, raw);
  const next = { ...(await loadSettings(catalog)), [name.toLowerCase()]: value } as AutopilotSettings;
  validateSettings(next);
  await catalog.setSetting(PREFIX + name.toLowerCase(), String(value));
  return next;
}
