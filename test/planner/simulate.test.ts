// Simulator and `pgtide simulate` CLI tests on small seeded traces (a few seconds in total).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { seasonalNaiveConformal } from '../../planner/baseline-forecast.js';
import { runSimulateCli } from '../../planner/cli.js';
import { simulate } from '../../planner/simulate.js';
import { defaultClusterModel } from '../../bench/planner/model.js';
import { acceptance } from '../../bench/planner/run.js';
import { DEFAULT_TRACE, generateTrace } from '../../bench/planner/traces.js';

test('simulator: four policies on a small seeded trace', () => {
  const trace = generateTrace({
    ...DEFAULT_TRACE,
    days: 4,
    trainDays: 2,
    cells: 64,
    cellBytes: 8e9,
    initialPartitions: 8,
    campaigns: [{ name: 'sale', day: 3, hour: 10, hours: 3, from: 0.25, to: 0.5, multiplier: 2 }],
    flashCrowds: 1,
    ramp: undefined,
    regimeShift: undefined,
  });
  const r = simulate(trace, defaultClusterModel(), { predictive: (h, e) => seasonalNaiveConformal(h, { events: e }) });
  assert.deepEqual(Object.keys(r), ['static', 'reactive', 'predictive', 'oracle']);
  assert.equal(r['static']!.jobs, 0);
  assert.equal(r['static']!.bytes_moved, 0);
  for (const name of ['predictive', 'oracle']) {
    assert.equal(r[name]!.thrash, 0, `${name} thrash`);
    assert.equal(r[name]!.campaigns.length, 1);
    assert.ok((r[name]!.campaigns[0]!.readyMinutesBefore ?? -1) >= 5, `${name} campaign ready ≥ 5 min before: ${JSON.stringify(r[name]!.campaigns)}`);
  }
  assert.ok(r['predictive']!.slo_violation_seconds <= r['reactive']!.slo_violation_seconds, 'predictive violates no more than reactive');
  // With two days of history the baseline forecaster is still daily-naive; only the oracle is held to the server budget here.
  assert.ok(r['oracle']!.server_hours < r['static']!.server_hours, 'oracle uses fewer server-hours than static-peak');
});

// Issue 8's acceptance on the benchmark's own trace (14 days of history, 14 replayed, all four
// policies: about 30 s of CPU per seed). The small trace above cannot hold these numbers: with two
// days of history the baseline forecaster is daily-naive. Seeds 7 and 2024 each have an
// unannounced flash crowd that only the surge rules (planner/README.md) answer in time.
for (const seed of [42, 7, 2024]) test(`issue 8 acceptance on the bench trace, seed ${seed}: −70 % violations vs reactive, ≤ 60 % of static server-hours, within 15 % of the oracle, no thrash, campaigns ready 5 min early`, () => {
  const r = simulate(generateTrace({ ...DEFAULT_TRACE, seed }), defaultClusterModel(), { predictive: (h, e) => seasonalNaiveConformal(h, { events: e }) });
  const a = acceptance(r);
  const pr = r['predictive']!;
  assert.ok(a.violationsVsReactive.ok, `violations ${pr.slo_violation_seconds} s vs reactive ${r['reactive']!.slo_violation_seconds} s: −${a.violationsVsReactive.reductionPct} % (≥ 70 %)`);
  assert.ok(a.serverHoursVsStatic.ok, `server-hours ${pr.server_hours} = ${a.serverHoursVsStatic.pct} % of static (≤ 60 %)`);
  assert.ok(a.violationsVsOracle.ok, `violations ${a.violationsVsOracle.predictive} s vs the oracle's ${a.violationsVsOracle.oracle} s: +${a.violationsVsOracle.gapPct} % (≤ 15 %)`);
  assert.equal(a.thrash.predictive, 0, 'thrash');
  assert.ok(a.campaignsReady.ok, `campaign lead ${JSON.stringify(pr.campaigns)} (≥ 5 min)`);
});

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

test('CLI: replays a small CSV and prints the policies as JSON; bad cells name row and column', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-simulate-'));
  try {
    const lines = ['timestamp,p1,p2,p3'];
    const start = Date.UTC(2025, 2, 3);
    for (let i = 0; i < 3 * 96; i++) {
      const hour = (i * 15) / 60;
      const d = 0.1 + 0.9 * ((1 - Math.cos((2 * Math.PI * (hour - 4)) / 24)) / 2);
      lines.push([new Date(start + i * 900_000).toISOString(), (400 * d).toFixed(1), (250 * d).toFixed(1), (100 * d).toFixed(1)].join(','));
    }
    const file = join(dir, 'trace.csv');
    writeFileSync(file, lines.join('\n') + '\n');
    const out = collect();
    const err = collect();
    const code = await runSimulateCli(['--trace', file, '--shard-capacity', '500', '--train-until', new Date(start + 2 * 86400_000).toISOString(), '--policies', 'static,reactive,predictive'], out.stream, err.stream);
    assert.equal(code, 0, err.text());
    const json = JSON.parse(out.text()) as { policies: Record<string, Record<string, number>> };
    assert.deepEqual(Object.keys(json.policies), ['static', 'reactive', 'predictive']);
    for (const p of Object.values(json.policies)) {
      assert.deepEqual(Object.keys(p), ['slo_violation_seconds', 'server_hours', 'partition_hours', 'bytes_moved', 'jobs', 'thrash']);
    }

    lines[5] = lines[5]!.replace(/,[^,]*$/, ',abc');
    writeFileSync(file, lines.join('\n') + '\n');
    const out2 = collect();
    const err2 = collect();
    assert.equal(await runSimulateCli(['--trace', file, '--shard-capacity', '500'], out2.stream, err2.stream), 2);
    assert.match(err2.text(), /row 6, column 4 \("p3"\): "abc" is not a number/);
    assert.equal(out2.text(), '');

    const err3 = collect();
    assert.equal(await runSimulateCli(['--trace', file], collect().stream, err3.stream), 2);
    assert.match(err3.text(), /--shard-capacity is required/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
