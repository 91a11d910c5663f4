// Core of `pgtide forecast`: read a CSV, train on rows up to --train-until, print forecasts as JSON.
//
// pgtide forecast --input FILE.csv --train-until TIMESTAMP --horizon N --quantiles 0.1,0.5,0.9
//                 [--model auto|naive|hw|lstm|ensemble] [--events FILE.json] [--seed N] [--verbose]
// stdout: {"series": {"<col>": [{"t", "mean", "quantiles": {"0.1": …}}…]}, "models": {"<col>": "<model>"}}
// Exit codes: 0 done, 2 bad usage or bad input (message on stderr naming row and column), 1 bug.
// --events reads a JSON list of {name, start, durationMs, table?, multiplier?}; --verbose prints each
// series' notes on stderr (stdout stays exactly the documented shape).

import { readFile } from 'node:fs/promises';
import { parseCsv } from './csv.js';
import { PredictorError, UsageError } from './errors.js';
import { parseTimestamp, toScheduledEvent, type ScheduledEvent } from './events.js';
import { forecastMany, MODEL_CHOICES, type ModelChoice, type PredictOptions } from './pipeline.js';
import { quantileKey } from './types.js';

const USAGE = 'usage: pgtide forecast --input FILE.csv --train-until TIMESTAMP --horizon N --quantiles 0.1,0.5,0.9 [--model auto|naive|hw|lstm|ensemble] [--events FILE.json] [--seed N] [--verbose]';

interface CliArgs {
  input: string;
  trainUntil: number;
  horizon: number;
  quantiles: number[];
  model: ModelChoice;
  events?: string;
  seed?: number;
  verbose: boolean;
}

function parseArgs(argv: readonly string[]): CliArgs {
  const a = [...argv];
  if (a[0] === 'forecast') a.shift();
  const got = new Map<string, string>();
  let verbose = false;
  for (let i = 0; i < a.length; i++) {
    let key = a[i]!;
    if (key === '--verbose') { verbose = true; continue; }
    if (key === '--help' || key === '-h') throw new UsageError(USAGE);
    let val: string | undefined;
    const eq = key.indexOf('=');
    if (key.startsWith('--') && eq > 0) { val = key.slice(eq + 1); key = key.slice(0, eq); }
    if (!['--input', '--train-until', '--horizon', '--quantiles', '--model', '--events', '--seed'].includes(key)) {
      throw new UsageError(`unknown argument "${key}"\n${USAGE}`);
    }
    if (val === undefined) {
      val = a[++i];
      if (val === undefined) throw new UsageError(`${key} needs a value\n${USAGE}`);
    }
    got.set(key, val);
  }
  for (const k of ['--input', '--train-until', '--horizon']) if (!got.has(k)) throw new UsageError(`missing ${k}\n${USAGE}`);
  const trainUntil = parseTimestamp(got.get('--train-until')!);
  if (!Number.isFinite(trainUntil)) throw new UsageError(`--train-until: invalid timestamp "${got.get('--train-until')}"`);
  const hs = got.get('--horizon')!;
  const horizon = Number(hs);
  if (!/^\d+$/.test(hs) || horizon < 1 || horizon > 10_000) throw new UsageError(`--horizon: expected a whole number of steps from 1 to 10000, got "${hs}"`);
  const qs = (got.get('--quantiles') ?? '0.1,0.5,0.9').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const quantiles = qs.map((s) => {
    const v = Number(s);
    if (!/^(0?\.\d+|0|1)$/.test(s) || !(v > 0 && v < 1)) throw new UsageError(`--quantiles: "${s}" is not a level strictly between 0 and 1`);
    return v;
  });
  if (quantiles.length === 0) throw new UsageError('--quantiles: at least one level');
  const model = (got.get('--model') ?? 'auto') as ModelChoice;
  if (!MODEL_CHOICES.includes(model)) throw new UsageError(`--model: expected one of ${MODEL_CHOICES.join('|')}, got "${model}"`);
  const seedS = got.get('--seed');
  if (seedS !== undefined && !/^\d+$/.test(seedS)) throw new UsageError(`--seed: expected a whole number, got "${seedS}"`);
  return {
    input: got.get('--input')!, trainUntil, horizon, quantiles, model, verbose,
    ...(got.has('--events') ? { events: got.get('--events')! } : {}),
    ...(seedS !== undefined ? { seed: Number(seedS) } : {}),
  };
}

function writeOut(out: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

/** Runs the forecast command; returns the exit code. Errors go to process.stderr (or `err`). */
export async function runForecastCli(
  argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream = process.stderr,
  extra: Partial<PredictOptions> = {},
): Promise<number> {
  try {
    const args = parseArgs(argv);
    let text: string;
    try {
      text = await readFile(args.input, 'utf8');
    } catch (e) {
      throw new UsageError(`--input: cannot read ${args.input}: ${(e as Error).message}`);
    }
    const table = parseCsv(text);
    let events: ScheduledEvent[] = [];
    if (args.events) {
      let raw: unknown;
      try { raw = JSON.parse(await readFile(args.events, 'utf8')); } catch (e) {
        throw new UsageError(`--events: cannot read ${args.events} as JSON: ${(e as Error).message}`);
      }
      if (!Array.isArray(raw)) throw new UsageError('--events: expected a JSON list of events');
      events = raw.map((e, i) => toScheduledEvent(e, `--events entry ${i}`));
    }
    // Rows at or before --train-until are history; the forecast starts at the next interval.
    let cut = 0;
    while (cut < table.times.length && table.times[cut]! <= args.trainUntil) cut++;
    const start = cut > 0 ? table.times[0]! : Math.floor(args.trainUntil / table.stepMs) * table.stepMs + table.stepMs;
    const inputs = table.columns.map((name, c) => ({
      name, series: { start, stepMs: table.stepMs, values: table.values[c]!.slice(0, cut) },
    }));
    const res = await forecastMany(inputs, {
      horizon: args.horizon, quantiles: args.quantiles, model: args.model, events,
      ...(args.seed !== undefined ? { seed: args.seed } : {}), ...extra,
    });
    const keys = args.quantiles.map(quantileKey);
    const series: Record<string, unknown[]> = {};
    const models: Record<string, string> = {};
    for (const name of table.columns) {
      const f = res.forecasts[name]!;
      series[name] = f.steps.map((s) => ({
        t: new Date(s.t).toISOString(),
        mean: round(s.mean),
        quantiles: Object.fromEntries(keys.map((k) => [k, round(s.quantiles[k]!)])),
      }));
      models[name] = f.model;
      if (args.verbose) for (const n of f.notes) err.write(`${name}: ${n}\n`);
    }
    if (args.verbose) err.write(`timings: ${JSON.stringify(res.timings)}${res.lstmBackend ? ` backend=${res.lstmBackend}` : ''}\n`);
    await writeOut(out, JSON.stringify({ series, models }) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof PredictorError) {
      err.write(`pgtide forecast: ${e.message}\n`);
      return 2;
    }
    err.write(`pgtide forecast: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

/** Six significant digits: plenty for load, and keeps the JSON readable. */
function round(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : 0;
}
