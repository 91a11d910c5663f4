// Autopilot on real embedded servers: SHOW FORECAST on a synthetic seasonal history, events, modes, APPLY PLAN STEP, auto mode, NaN, restores.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

const HOUR = 3_600_000;
const DAYS = 21;
const HOT_BASE = 3000;
const COLD_BASE = 100;
let cluster: TestCluster;
let admin: pg.Client;
let app: pg.Client;
let hot = 0;

/** Load units/s of a partition at time t: a daily sinusoid (±20 % hot, ±60 % cold) with ±3 % noise. */
function rate(base: number, t: number, noise = 0): number {
  const h = new Date(t).getUTCHours();
  const amp = base === HOT_BASE ? 0.2 : 0.6;
  return base * (1 + amp * Math.sin((2 * Math.PI * h) / 24)) * (1 + 0.03 * noise);
}

async function expectError(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error & { code?: string }) => {
    assert.equal(err.code, code, `${err.message}`);
    if (re) assert.match(err.message, re);
    return true;
  });
}

/** Runs an admin command and returns its rows and notices. */
async function adm(sql: string): Promise<{ rows: Record<string, string | null>[]; notices: string[] }> {
  const notices: string[] = [];
  const onNotice = (n: { message?: string }) => notices.push(n.message ?? '');
  admin.on('notice', onNotice);
  try {
    const r = await admin.query(sql);
    return { rows: r.rows as Record<string, string | null>[], notices };
  } finally {
    admin.off('notice', onNotice);
  }
}

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  admin = await cluster.admin();
  app = await cluster.client();
  await app.query('CREATE TABLE orders (id bigint PRIMARY KEY, v text)');
  await adm('SHARD TABLE orders BY (id) PARTITIONS 4');
  for (const [k, v] of Object.entries({ lstm: 'off', step_s: 3600, horizon: 24, history_steps: 600, partition_max_load: 1000, partition_min_load: 1, shard_capacity: 1e6 })) {
    await adm(`SET AUTOPILOT ${k} = ${v}`);
  }
  // Synthetic history: 21 days of hourly buckets, one hot partition.
  const pool = cluster.proxy.catalog.pool;
  const { rows } = await pool.query<{ id: number }>("SELECT p.id FROM pgtide.partitions p JOIN pgtide.tables t ON t.keyspace_id = p.keyspace_id WHERE t.name = 'orders' ORDER BY p.lo");
  hot = rows[1]!.id;
  const end = Math.floor(Date.now() / HOUR) * HOUR;
  const b: string[] = [], pid: number[] = [], reads: number[] = [];
  let seed = 1;
  for (let i = DAYS * 24; i >= 1; i--) {
    const t = end - i * HOUR;
    for (const r of rows) {
      seed = (seed * 48271) % 2147483647;
      const base = r.id === hot ? HOT_BASE : COLD_BASE;
      b.push(new Date(t).toISOString());
      pid.push(r.id);
      reads.push(rate(base, t, (seed / 2147483647) * 2 - 1) * 3600);
    }
  }
  await pool.query(
    `INSERT INTO pgtide.load_history (bucket, proxy_id, partition_id, table_name, interval_s, reads)
     SELECT b, 999, p, 'orders', 3600, r FROM unnest($1::timestamptz[], $2::int[], $3::float8[]) AS u(b, p, r)`, [b, pid, reads]);
});

after(async () => {
  await cluster?.stop();
});

test('SHOW FORECAST after a seasonal history: monotone quantiles that follow the season; HORIZON, partition, unknown table', async () => {
  const run = await adm('RUN AUTOPILOT');
  assert.match(run.notices.join('\n'), /forecast run \d+ stored/);
  const { rows, notices } = await adm('SHOW FORECAST orders');
  assert.equal(rows.length, 4 * 24);
  assert.match(notices[0]!, /24 steps of 3600 s/);
  for (const r of rows) {
    const [p10, p50, p90, p99] = [r.p10, r.p50, r.p90, r.p99].map(Number) as [number, number, number, number];
    assert.ok(p10 >= 0 && p10 <= p50 && p50 <= p90 && p90 <= p99, `monotone quantiles: ${JSON.stringify(r)}`);
    assert.ok(Number(r.mean) >= p10 && Number(r.mean) <= p99);
  }
  for (const id of [hot, ...new Set(rows.map((r) => Number(r.partition)))]) {
    const mine = rows.filter((r) => Number(r.partition) === id);
    const base = id === hot ? HOT_BASE : COLD_BASE;
    let errSum = 0;
    for (const r of mine) {
      const want = rate(base, Date.parse(r.t!));
      errSum += Math.abs(Number(r.mean) - want) / want;
      // The 80 % band holds the noise-free season nearly everywhere.
      assert.ok(Number(r.p10) <= want * 1.1 && Number(r.p90) >= want * 0.9, `band ${r.p10}–${r.p90} around ${want} at ${r.t}`);
    }
    assert.ok(errSum / mine.length < 0.1, `partition ${id}: mean relative error ${errSum / mine.length}`);
  }
  assert.equal((await adm('SHOW FORECAST orders HORIZON 6')).rows.length, 4 * 6);
  const one = await adm(`SHOW FORECAST ${hot}`);
  assert.equal(one.rows.length, 24);
  assert.ok(one.rows.every((r) => Number(r.partition) === hot));
  await expectError(adm('SHOW FORECAST nosuch'), '42P01');
  await expectError(adm('SHOW FORECAST 99999'), '42704');
  await expectError(adm('SHOW FORECAST orders HORIZON 0'), '22023');
  // The status page's forecast-vs-actual panel is fed.
  const res = await fetch(`http://127.0.0.1:${cluster.proxy.httpPort}/api/status`);
  const status = (await res.json()) as { forecast: { partitionId: number; points: unknown[] }[] };
  assert.equal(status.forecast[0]!.partitionId, hot);
  assert.ok(status.forecast[0]!.points.length >= 24);
});

test('events: SCHEDULE EVENT raises the forecast in its window, SHOW EVENTS lists it, bad input is refused', async () => {
  const before = (await adm(`SHOW FORECAST ${hot}`)).rows;
  const at = Date.parse(before[9]!.t!);
  await adm(`SCHEDULE EVENT flash_sale AT '${new Date(at).toISOString()}' FOR '3 hours' ON orders EXPECT 3`);
  const ev = (await adm('SHOW EVENTS')).rows;
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.name, 'flash_sale');
  assert.equal(ev[0]!.table, 'orders');
  assert.equal(Number(ev[0]!.expect), 3);
  await expectError(adm("SCHEDULE EVENT x AT 'tomorrow' FOR '1 hour'"), '42601');
  await expectError(adm("SCHEDULE EVENT x AT '2030-01-01 00:00' FOR '1 hour' ON nosuch"), '42P01');
  await adm('RUN AUTOPILOT');
  const after = (await adm(`SHOW FORECAST ${hot}`)).rows;
  const inWindow = after.filter((r) => Date.parse(r.t!) >= at && Date.parse(r.t!) < at + 3 * HOUR);
  assert.equal(inWindow.length, 3);
  for (const r of inWindow) {
    const old = before.find((x) => x.t === r.t)!;
    assert.ok(Number(r.mean) > 2.5 * Number(old.mean), `event step ${r.t}: ${r.mean} vs ${old.mean}`);
  }
  const outside = after.find((r) => Date.parse(r.t!) < at)!;
  assert.ok(Math.abs(Number(outside.mean) / Number(before.find((x) => x.t === outside.t)!.mean) - 1) < 0.05);
});

test('modes and settings: persisted, APPLY PLAN refused when off, contradicting thresholds refused with 22023 changing nothing', async () => {
  await adm('SET AUTOPILOT off');
  await expectError(adm('APPLY PLAN'), '55000', /off/);
  const off = await cluster.proxy.catalog.getSetting('autopilot.mode');
  assert.equal(off, 'off');
  await expectError(adm('SET AUTOPILOT partition_min_load = 1000'), '22023', /min load .* must be below/);
  await expectError(adm('SET AUTOPILOT partition_max_load = 0.5'), '22023');
  await expectError(adm('SET AUTOPILOT shard_min_utilization = 0.9'), '22023');
  await expectError(adm('SET AUTOPILOT nosuch = 1'), '42704');
  await expectError(adm('SET AUTOPILOT horizon = 1000'), '22023');
  const settings = Object.fromEntries((await adm('SHOW AUTOPILOT')).rows.filter((r) => r.kind === 'setting').map((r) => [r.name, r.value]));
  assert.equal(settings.partition_min_load, '1');
  assert.equal(settings.partition_max_load, '1000');
  assert.equal(settings.mode, 'off');
  await adm('SET AUTOPILOT recommend');
  assert.equal(await cluster.proxy.catalog.getSetting('autopilot.mode'), 'recommend');
});

test('recommend: SHOW PLAN explains a split of the hot partition; APPLY PLAN STEP n splits it on its shard; a busy partition is never touched', async () => {
  const partsBefore = (await adm('SHOW PARTITIONS')).rows;
  await adm('RUN AUTOPILOT');
  const lines = (await adm('SHOW PLAN')).rows.map((r) => r.line!);
  const stepLine = lines.find((l) => new RegExp(`^step \\d+: SPLIT PARTITION ${hot} AT`).test(l));
  assert.ok(stepLine, lines.join('\n'));
  assert.ok(lines.some((l) => /^ {2}why: /.test(l)));
  assert.ok(lines.some((l) => /predicted: .*80 % interval/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /metadata only/.test(l)));
  const n = Number(/^step (\d+)/.exec(stepLine!)![1]);
  // A partition with a running job is never started on.
  await cluster.proxy.catalog.pool.query("UPDATE pgtide.partitions SET state = 'moving' WHERE id = $1", [hot]);
  await expectError(adm(`APPLY PLAN STEP ${n}`), '55006', /running job/);
  await cluster.proxy.catalog.pool.query("UPDATE pgtide.partitions SET state = 'active' WHERE id = $1", [hot]);
  await expectError(adm('APPLY PLAN STEP 999'), '22023');
  const applied = await adm(`APPLY PLAN STEP ${n}`);
  assert.match(applied.notices.join('\n'), new RegExp(`partition ${hot} split at`));
  const partsAfter = (await adm('SHOW PARTITIONS')).rows;
  assert.equal(partsAfter.length, partsBefore.length + 1);
  const was = partsBefore.find((p) => Number(p.id) === hot)!;
  const left = partsAfter.find((p) => Number(p.id) === hot)!;
  const right = partsAfter.find((p) => p.lo === left.hi)!;
  assert.equal(right.hi, was.hi);
  assert.equal(right.shard, was.shard, 'metadata-only: both halves on the same shard');
  assert.ok((await adm('SHOW PLAN')).rows.some((r) => r.line!.startsWith(`step ${n}:`) && r.line!.endsWith('[applied]')));
  await expectError(adm(`APPLY PLAN STEP ${n}`), '55000', /applied already/);
  const acts = await cluster.proxy.catalog.pool.query('SELECT kind, partition_id FROM pgtide.autopilot_actions');
  assert.deepEqual(acts.rows, [{ kind: 'split', partition_id: hot }]);
});

test('auto: due steps are applied by the run itself; the new pieces are not merged back (cooldown)', async () => {
  await adm('SET AUTOPILOT auto');
  const before = (await adm('SHOW PARTITIONS')).rows.length;
  const r = await adm('RUN AUTOPILOT');
  const after = (await adm('SHOW PARTITIONS')).rows.length;
  assert.ok(after > before, `auto split: ${before} → ${after}; ${r.notices.join(' | ')}`);
  const kinds = (await cluster.proxy.catalog.pool.query('SELECT kind FROM pgtide.autopilot_actions')).rows.map((x) => x.kind as string);
  assert.ok(!kinds.includes('merge'), 'no merge within the cooldown');
  await adm('SET AUTOPILOT recommend');
});

test('a NaN forecast: no action on the partition and a logged reason', async () => {
  const pool = cluster.proxy.catalog.pool;
  const { rows: parts } = await pool.query<{ id: number }>("SELECT p.id FROM pgtide.partitions p JOIN pgtide.tables t ON t.keyspace_id = p.keyspace_id WHERE t.name = 'orders'");
  const run = await pool.query<{ id: string }>("INSERT INTO pgtide.forecast_runs (step_s, horizon, series, ms) VALUES (3600, 4, $1, 0) RETURNING id", [parts.length]);
  const start = Math.floor(Date.now() / HOUR) * HOUR;
  for (const p of parts) {
    for (let k = 1; k <= 4; k++) {
      const v = p.id === hot ? 'NaN' : '5000';
      await pool.query(`INSERT INTO pgtide.forecasts (run_id, partition_id, step, t, mean, quantiles, model) VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000), $5::float8, $6, 'test')`,
        [run.rows[0]!.id, p.id, k, start + (k - 1) * HOUR, v, JSON.stringify(p.id === hot ? { 0.1: null, 0.5: null, 0.9: null, 0.99: null } : { 0.1: 4000, 0.5: 5000, 0.9: 6000, 0.99: 7000 })]);
    }
  }
  const plan = await cluster.proxy.autopilot.plan();
  assert.ok(plan!.reasons.some((x) => x.code === 'forecast-nan' && x.partitionId === hot));
  assert.ok(!plan!.steps.some((s) => s.action.kind === 'split' && s.action.partitionId === hot), 'no step on the NaN partition');
  const log = (await adm('SHOW AUTOPILOT')).rows.filter((r) => r.kind === 'log').map((r) => r.value!);
  assert.ok(log.some((l) => new RegExp(`forecast-nan: partition ${hot}'s forecast contains NaN`).test(l)), log.join('\n'));
});

test('RESTORE TABLE: the forecast overrides too few partitions (SHOW OVERRIDES); PINNED keeps 2 and is logged; unknown table 42P01', async () => {
  const count = async (t: string) => Number((await cluster.proxy.catalog.pool.query(
    'SELECT count(*) AS n FROM pgtide.partitions p JOIN pgtide.tables t ON t.keyspace_id = p.keyspace_id WHERE t.name = $1', [t])).rows[0]!.n);
  await app.query('CREATE TABLE restored (id bigint PRIMARY KEY, payload text)');
  await app.query('CREATE TABLE restored_pinned (id bigint PRIMARY KEY, payload text)');
  const r = await adm('RESTORE TABLE restored WITH (shard_key = id, partitions = 2, expected_rows = 1000000, expected_peak = 5000)');
  assert.match(r.notices.join('\n'), /partitions: 2 overridden with 7/);
  assert.equal(await count('restored'), 7);
  await adm('RESTORE TABLE restored_pinned WITH (shard_key = id, partitions = 2 PINNED, expected_peak = 5000)');
  assert.equal(await count('restored_pinned'), 2);
  const o = (await adm('SHOW OVERRIDES')).rows;
  const over = o.find((x) => x.table === 'restored' && x.parameter === 'partitions')!;
  assert.equal(Number(over.user_value), 2);
  assert.equal(Number(over.chosen_value), 7);
  assert.equal(over.pinned, 'no');
  assert.match(over.reason!, /needs 7 partitions/);
  assert.ok(over.time);
  const pin = o.find((x) => x.table === 'restored_pinned' && x.parameter === 'partitions')!;
  assert.equal(Number(pin.chosen_value), 2);
  assert.equal(pin.pinned, 'yes');
  assert.match(pin.reason!, /kept the PINNED value/);
  // Rows land by key on the new layout.
  await app.query(`INSERT INTO restored (id, payload) VALUES ${Array.from({ length: 200 }, (_, i) => `(${i + 1}, 'r${i + 1}')`).join(', ')}`);
  assert.equal(Number((await app.query('SELECT count(*) AS n FROM restored')).rows[0]!.n), 200);
  // The restore request seeds the forecast of partitions without history.
  await adm('RUN AUTOPILOT');
  const f = (await adm('SHOW FORECAST restored HORIZON 1')).rows;
  assert.equal(f.length, 7);
  assert.ok(f.every((x) => x.model === 'seed' && Number(x.p90) > 0), JSON.stringify(f[0]));
  await expectError(adm('RESTORE TABLE nosuch WITH (shard_key = id, partitions = 2)'), '42P01', /relation "nosuch" does not exist/);
  await expectError(adm('RESTORE TABLE restored_pinned WITH (shard_key = id, partitions = 0)'), '22023');
  await expectError(adm('RESTORE TABLE restored_pinned WITH (partitions = 2)'), '42601');
  await expectError(adm('RESTORE TABLE restored WITH (shard_key = payload)'), '42710');
});

test('the LSTM trains in a worker once, is stored in the catalog and reused by the next run; the event loop stays responsive', async () => {
  await adm('SET AUTOPILOT lstm = on');
  await adm('SET AUTOPILOT lstm_epochs = 1');
  await adm('SET AUTOPILOT lstm_samples = 64');
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  await adm('RUN AUTOPILOT');
  h.disable();
  const model = await cluster.proxy.catalog.pool.query("SELECT trained_at, model->>'format' AS format FROM pgtide.models WHERE name = 'global-lstm'");
  assert.equal(model.rows[0]?.format, 'pgtide-lstm');
  const last = () => adm('SHOW AUTOPILOT').then((r) => r.rows.find((x) => x.kind === 'last run')!.value!);
  assert.match(await last(), /LSTM: trained/);
  await adm('RUN AUTOPILOT');
  assert.match(await last(), /LSTM: reused the model trained at/);
  const again = await cluster.proxy.catalog.pool.query("SELECT trained_at FROM pgtide.models WHERE name = 'global-lstm'");
  assert.deepEqual(again.rows[0]!.trained_at, model.rows[0]!.trained_at);
  assert.ok(h.max / 1e6 < 500, `event loop blocked for ${h.max / 1e6} ms during a forecast`);
});
