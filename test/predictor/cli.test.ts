// Tests `pgtide forecast` end to end on a small CSV, in-process (runForecastCli with streams).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runForecastCli } from '../../predictor/cli.js';
import { HOUR, T0, dailyWeekly } from './helpers.js';

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return { stream: new Writable({ write(c, _e, cb) { chunks.push(Buffer.from(c)); cb(); } }), text: () => Buffer.concat(chunks).toString('utf8') };
}

async function withCsv(content: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pgtide-cli-'));
  try {
    const path = join(dir, 'in.csv');
    await writeFile(path, content);
    await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const N = 24 * 7 * 3;
const a = dailyWeekly(N, 1), b = dailyWeekly(N, 2, 0.1, 10);
const csv = 'time,orders,users\n' + a.map((v, i) => `${new Date(T0 + i * HOUR).toISOString()},${v.toFixed(3)},${i === 40 ? '' : b[i]!.toFixed(3)}`).join('\n') + '\n';
const trainUntil = new Date(T0 + (N - 25) * HOUR).toISOString();

test('forecast prints the documented JSON and trains only up to --train-until', async () => {
  await withCsv(csv, async (path) => {
    const out = sink(), err = sink();
    const code = await runForecastCli(['forecast', '--input', path, '--train-until', trainUntil, '--horizon', '6', '--quantiles', '0.1,0.5,0.9', '--model', 'hw'], out.stream, err.stream);
    assert.equal(code, 0, err.text());
    const j = JSON.parse(out.text()) as { series: Record<string, { t: string; mean: number; quantiles: Record<string, number> }[]>; models: Record<string, string> };
    assert.deepEqual(Object.keys(j), ['series', 'models']);
    assert.deepEqual(Object.keys(j.series), ['orders', 'users']);
    assert.equal(j.series['orders']!.length, 6);
    // The first forecast step is the interval right after --train-until.
    assert.equal(j.series['orders']![0]!.t, new Date(T0 + (N - 24) * HOUR).toISOString());
    for (const s of j.series['users']!) {
      assert.deepEqual(Object.keys(s.quantiles), ['0.1', '0.5', '0.9']);
      assert.ok(s.quantiles['0.1']! <= s.quantiles['0.5']! && s.quantiles['0.5']! <= s.quantiles['0.9']!);
      assert.ok(s.mean >= 0);
    }
    assert.equal(j.models['orders'], 'hw');
    // Truth is in the file after --train-until; the forecast must be in its neighbourhood.
    const rel = Math.abs(j.series['orders']![3]!.mean - a[N - 21]!) / a[N - 21]!;
    assert.ok(rel < 0.5, `relative error ${rel}`);
  });
});

test('--model naive and --model auto report the model used', async () => {
  await withCsv(csv, async (path) => {
    const out = sink();
    assert.equal(await runForecastCli(['--input', path, '--train-until', trainUntil, '--horizon', '3', '--quantiles', '0.5', '--model', 'naive'], out.stream, sink().stream), 0);
    assert.match((JSON.parse(out.text()) as { models: Record<string, string> }).models['orders']!, /^snaive-(24|168)$/);
  });
});

test('bad cells and bad arguments exit 2 with a message naming row and column', async () => {
  const bad = csv.replace(/\n(.*?),([\d.]+),/, (_m, t) => `\n${t},12x,`);
  await withCsv(bad, async (path) => {
    const out = sink(), err = sink();
    assert.equal(await runForecastCli(['--input', path, '--train-until', trainUntil, '--horizon', '3'], out.stream, err.stream), 2);
    assert.match(err.text(), /row 2, column "orders": not a number: "12x"/);
    assert.equal(out.text(), '');
  });
  const badTs = csv.replace(new Date(T0 + 5 * HOUR).toISOString(), '2025-13-45T00:00:00Z');
  await withCsv(badTs, async (path) => {
    const err = sink();
    assert.equal(await runForecastCli(['--input', path, '--train-until', trainUntil, '--horizon', '3'], sink().stream, err.stream), 2);
    assert.match(err.text(), /row 7, column "time": invalid timestamp/);
  });
  const err = sink();
  assert.equal(await runForecastCli(['--input', 'x.csv', '--train-until', 'soon', '--horizon', '3'], sink().stream, err.stream), 2);
  assert.match(err.text(), /--train-until: invalid timestamp/);
  assert.equal(await runForecastCli(['--input', 'x.csv', '--train-until', trainUntil, '--horizon', '3', '--model', 'magic'], sink().stream, sink().stream), 2);
});
