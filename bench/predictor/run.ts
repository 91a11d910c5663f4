// Predictor backtest (`npm run bench -- predictor`): MASE, pinball loss and interval coverage on seeded traces.
//
// For every trace the last TEST_DAYS days are the test period. Forecasts are issued from rolling
// origins every ORIGIN_EVERY_H hours, each one fitted only on data before its origin (the
// calibration window inside that history is the models' own business, see pipeline.ts). The LSTM
// is trained at the first origin of a trace and reused (reloaded from its saved value) at later
// origins, as the leader's loop would between retrainings; its training data always ends before
// the calibration window of every later origin, so nothing it saw is scored.
// MASE(h) = MAE of the model at step h / MAE of the weekly seasonal naive forecast at step h,
// over the same origins and series, each series' errors divided by its mean load over the two
// weeks before the origin (so < 1 means "beats seasonal naive at that horizon").

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forecastMany } from '../../predictor/pipeline.js';
import type { SavedLstm } from '../../predictor/lstm-net.js';
import { eventSteps } from '../../predictor/events.js';
import { makeTraces, type Trace } from './traces.js';
import { runPerf, type PerfResult } from './perf.js';

const TEST_DAYS = 14;
const ORIGIN_EVERY_H = 24;
const HORIZON = 48;
const REPORT_H = [1, 6, 24, 48];
const LEVELS = [0.025, 0.1, 0.5, 0.9, 0.975];
const SEASON = 168;

export interface RunOptions {
  seed?: number;
  /** Fewer origins and traces' series for a quick look. */
  quick?: boolean;
  /** Also time the 16 × 4,000 CLI run (default true). */
  perf?: boolean;
  /** Where to write JSON (default bench/results/predictor.json). */
  out?: string;
  log?: (line: string) => void;
  traces?: string[];
}

interface Acc { abs: number; n: number }
const acc = (): Acc => ({ abs: 0, n: 0 });

interface TraceReport {
  trace: string;
  seasonal: boolean;
  origins: number;
  series: number;
  mase: Record<string, Record<string, number>>;
  pinball: Record<string, number>;
  coverage80: Record<string, number>;
  coverage95: Record<string, number>;
  campaigns?: { announced: number; anticipated: number; meanRatio: number };
  lstmTrainMs?: number;
  models: Record<string, number>;
}

export async function run(opts: RunOptions = {}): Promise<object> {
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const seed = opts.seed ?? 42;
  const traces = makeTraces(seed, { seriesPerTrace: opts.quick ? 4 : 6 }).filter((t) => !opts.traces || opts.traces.includes(t.name));
  const t0 = performance.now();
  const reports: TraceReport[] = [];
  for (const tr of traces) {
    reports.push(await backtestTrace(tr, opts));
    log(`  ${tr.name}: done (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  let perf: PerfResult | undefined;
  if (opts.perf ?? true) perf = await runPerf();
  printTable(reports, perf, log);
  const result = {
    bench: 'predictor', seed, testDays: TEST_DAYS, originEveryHours: ORIGIN_EVERY_H, horizon: HORIZON,
    baseline: 'weekly seasonal naive (168 h)', traces: reports, perf,
    acceptance: acceptance(reports), elapsedMs: performance.now() - t0,
  };
  const out = opts.out ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results', 'predictor.json');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(result, null, 2) + '\n');
  log(`wrote ${out}`);
  return result;
}

async function backtestTrace(tr: Trace, opts: RunOptions): Promise<TraceReport> {
  const n = tr.series[0]!.values.length;
  const testStart = n - TEST_DAYS * 24;
  const origins: number[] = [];
  for (let o = testStart; o + HORIZON <= n; o += opts.quick ? ORIGIN_EVERY_H * 2 : ORIGIN_EVERY_H) origins.push(o);
  const mae = new Map<string, Acc[]>();
  const get = (m: string): Acc[] => { let a = mae.get(m); if (!a) { a = REPORT_H.map(acc); mae.set(m, a); } return a; };
  const cov80 = REPORT_H.map(acc), cov95 = REPORT_H.map(acc);
  const all80 = acc(), all95 = acc();
  let pinSum = 0, pinN = 0, baseAbs = 0, baseN = 0;
  const modelCount: Record<string, number> = {};
  let saved: SavedLstm | undefined;
  let lstmTrainMs: number | undefined;
  let announced = 0, anticipated = 0, ratioSum = 0;
  for (const o of origins) {
    const inputs = tr.series.map((s) => ({ name: s.name, series: { start: tr.start, stepMs: tr.stepMs, values: s.values.slice(0, o) } }));
    const res = await forecastMany(inputs, {
      horizon: HORIZON, quantiles: LEVELS, model: 'auto', events: tr.events, seed: 1,
      lstm: saved ? { pretrained: saved } : { seed: 1 },
    });
    if (!saved && res.lstmModel) { saved = res.lstmModel; lstmTrainMs = res.lstmModel.trainMs; }
    for (const s of tr.series) {
      const f = res.forecasts[s.name]!;
      // Errors are divided by the series' recent mean so that one large partition does not decide
      // the MASE of the whole trace.
      let sc = 0;
      for (let i = o - 336; i < o; i++) sc += s.values[i]!;
      sc = Math.max(sc / 336, 1e-9);
      const fam = f.model.startsWith('ensemble') ? 'ensemble' : f.model;
      modelCount[fam] = (modelCount[fam] ?? 0) + 1;
      for (let k = 0; k < HORIZON; k++) {
        const y = s.values[o + k]!;
        const st = f.steps[k]!;
        const q = st.quantiles;
        const in80 = y >= q['0.1']! && y <= q['0.9']! ? 1 : 0;
        const in95 = y >= q['0.025']! && y <= q['0.975']! ? 1 : 0;
        all80.abs += in80; all80.n++;
        all95.abs += in95; all95.n++;
        const naive = s.values[o + k - SEASON * Math.ceil((k + 1) / SEASON)]!;
        for (const lv of LEVELS) {
          const qv = q[String(lv)]!;
          pinSum += Math.max(lv * (y - qv), (lv - 1) * (y - qv)) / sc;
          pinN++;
        }
        baseAbs += Math.abs(y - naive) / sc; baseN++;
        const hi = REPORT_H.indexOf(k + 1);
        if (hi < 0) continue;
        cov80[hi]!.abs += in80; cov80[hi]!.n++;
        cov95[hi]!.abs += in95; cov95[hi]!.n++;
        const add = (m: string, v: number): void => { const a = get(m)[hi]!; a.abs += Math.abs(y - v) / sc; a.n++; };
        add('seasonal-naive', naive);
        add('ensemble', st.mean);
        for (const [m, comp] of Object.entries(f.components ?? {})) add(m, comp[k]!);
      }
      // Announced campaigns starting inside this forecast's horizon: was the uplift forecast?
      for (const ev of tr.events) {
        const [a, b] = eventSteps(ev, tr.start + o * tr.stepMs, tr.stepMs, HORIZON);
        const startStep = Math.floor(((ev.start as number) - tr.start) / tr.stepMs) - o;
        if (startStep <= 0 || startStep >= HORIZON || b <= a) continue;
        let fsum = 0, ysum = 0, nsum = 0;
        for (let k = a; k < b; k++) {
          fsum += f.steps[k]!.mean;
          ysum += s.values[o + k]!;
          nsum += s.values[o + k - SEASON * Math.ceil((k + 1) / SEASON)]!;
        }
        announced++;
        const ratio = fsum / Math.max(ysum, 1e-9);
        ratioSum += ratio;
        if (fsum >= 1.5 * nsum && ratio > 0.67 && ratio < 1.5) anticipated++;
      }
    }
  }
  const base = mae.get('seasonal-naive')!;
  const maseOut: Record<string, Record<string, number>> = {};
  for (const [m, a] of mae) {
    if (m === 'seasonal-naive') continue;
    maseOut[m] = Object.fromEntries(REPORT_H.map((h, i) => [`h${h}`, r3(a[i]!.abs / a[i]!.n / (base[i]!.abs / base[i]!.n))]));
  }
  const covOut = (c: Acc[], all: Acc): Record<string, number> => ({
    ...Object.fromEntries(REPORT_H.map((h, i) => [`h${h}`, r3(c[i]!.abs / c[i]!.n)])), all: r3(all.abs / all.n),
  });
  return {
    trace: tr.name, seasonal: tr.seasonal, origins: origins.length, series: tr.series.length,
    mase: maseOut,
    // Scaled pinball: mean pinball loss over the five levels / MAE of seasonal naive (all steps).
    pinball: { scaled: r3((pinSum / pinN) / (baseAbs / baseN)) },
    coverage80: covOut(cov80, all80), coverage95: covOut(cov95, all95),
    ...(announced ? { campaigns: { announced, anticipated, meanRatio: r3(ratioSum / announced) } } : {}),
    ...(lstmTrainMs !== undefined ? { lstmTrainMs: Math.round(lstmTrainMs) } : {}),
    models: modelCount,
  };
}

function r3(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : NaN;
}

function acceptance(reports: TraceReport[]): { pass: boolean; failures: string[] } {
  const failures: string[] = [];
  for (const r of reports) {
    if (r.seasonal) {
      for (const [h, v] of Object.entries(r.mase['ensemble'] ?? {})) if (!(v < 1)) failures.push(`${r.trace}: ensemble MASE ${v} at ${h}`);
    }
    const c80 = r.coverage80['all']!, c95 = r.coverage95['all']!;
    if (Math.abs(c80 - 0.8) > 0.05) failures.push(`${r.trace}: 80% coverage ${c80}`);
    if (Math.abs(c95 - 0.95) > 0.03) failures.push(`${r.trace}: 95% coverage ${c95}`);
    if (r.campaigns && r.campaigns.anticipated < r.campaigns.announced) failures.push(`${r.trace}: ${r.campaigns.announced - r.campaigns.anticipated} campaign(s) not anticipated`);
  }
  return { pass: failures.length === 0, failures };
}

function printTable(reports: TraceReport[], perf: PerfResult | undefined, log: (l: string) => void): void {
  const pad = (s: string, w: number): string => s.padEnd(w);
  const cols = REPORT_H.map((h) => `h${h}`);
  log('');
  log(`${pad('trace', 15)}${pad('model', 12)}${cols.map((c) => pad('MASE ' + c, 10)).join('')}`);
  for (const r of reports) {
    const models = Object.keys(r.mase).sort((a, b) => (a === 'ensemble' ? 1 : b === 'ensemble' ? -1 : a.localeCompare(b)));
    for (const m of models) log(`${pad(r.trace, 15)}${pad(m, 12)}${cols.map((c) => pad(String(r.mase[m]![c] ?? ''), 10)).join('')}`);
  }
  log('');
  log(`${pad('trace', 15)}${pad('cov80 all', 10)}${cols.map((c) => pad('80 ' + c, 9)).join('')}${pad('cov95 all', 10)}${cols.map((c) => pad('95 ' + c, 9)).join('')}${pad('pinball', 9)}campaigns`);
  for (const r of reports) {
    log(`${pad(r.trace, 15)}${pad(String(r.coverage80['all']), 10)}${cols.map((c) => pad(String(r.coverage80[c]), 9)).join('')}` +
      `${pad(String(r.coverage95['all']), 10)}${cols.map((c) => pad(String(r.coverage95[c]), 9)).join('')}${pad(String(r.pinball['scaled']), 9)}` +
      `${r.campaigns ? `${r.campaigns.anticipated}/${r.campaigns.announced} anticipated, forecast/actual ${r.campaigns.meanRatio}` : ''}`);
  }
  if (perf) log(`\nCLI 16×4000 hourly, horizon 24, --model auto: ${(perf.ms / 1000).toFixed(1)} s (exit ${perf.exitCode})`);
  const acc = acceptance(reports);
  log(acc.pass ? 'acceptance: PASS' : `acceptance: FAIL\n  ${acc.failures.join('\n  ')}`);
}

// Direct run: node dist/bench/predictor/run.js [--quick] [--no-perf]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const tr = argv.find((a) => a.startsWith('--traces='))?.slice(9).split(',');
  await run({ quick: argv.includes('--quick'), perf: !argv.includes('--no-perf'), ...(tr ? { traces: tr } : {}) });
}
