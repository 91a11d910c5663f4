// Timing of `pgtide forecast` over 16 series × 4,000 hourly points with a 24-step horizon (issue 7).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runForecastCli } from '../../predictor/cli.js';
import { gaussian, makeRng } from '../../predictor/series.js';

export interface PerfResult {
  series: number;
  points: number;
  horizon: number;
  ms: number;
  exitCode: number;
  models: Record<string, string>;
}

/** Writes a seeded CSV of `series` columns × `points` hourly rows; returns its path and last time. */
export async function writePerfCsv(dir: string, series: number, points: number, seed: number): Promise<{ path: string; last: string }> {
  const rng = makeRng(seed);
  const t0 = Date.UTC(2024, 0, 1);
  const levels = Array.from({ length: series }, () => 20 + 200 * rng());
  const ar = new Float64Array(series);
  const lines = ['time,' + Array.from({ length: series }, (_, s) => `p${s}`).join(',')];
  for (let i = 0; i < points; i++) {
    const t = t0 + i * 3_600_000;
    const h = i % 24, d = Math.floor(i / 24) % 7;
    const cells = [new Date(t).toISOString()];
    for (let s = 0; s < series; s++) {
      ar[s] = 0.7 * ar[s]! + 0.07 * gaussian(rng);
      const v = levels[s]! * (0.1 + 0.9 * (0.5 - 0.5 * Math.cos((2 * Math.PI * (h - 2)) / 24))) * (d >= 5 ? 0.6 : 1) * Math.exp(ar[s]! + 0.05 * gaussian(rng));
      cells.push(v.toFixed(3));
    }
    lines.push(cells.join(','));
  }
  const path = join(dir, 'perf.csv');
  await writeFile(path, lines.join('\n') + '\n');
  return { path, last: new Date(t0 + (points - 1) * 3_600_000).toISOString() };
}

export async function runPerf(opts: { series?: number; points?: number; horizon?: number; seed?: number } = {}): Promise<PerfResult> {
  const series = opts.series ?? 16, points = opts.points ?? 4000, horizon = opts.horizon ?? 24;
  const dir = await mkdtemp(join(tmpdir(), 'pgtide-perf-'));
  try {
    const { path, last } = await writePerfCsv(dir, series, points, opts.seed ?? 1);
    const chunks: Buffer[] = [];
    const out = new Writable({ write(c, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
    const t0 = performance.now();
    const exitCode = await runForecastCli(['forecast', '--input', path, '--train-until', last, '--horizon', String(horizon), '--quantiles', '0.1,0.5,0.9', '--model', 'auto'], out);
    const ms = performance.now() - t0;
    const models = exitCode === 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { models: Record<string, string> }).models : {};
    return { series, points, horizon, ms, exitCode, models };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
