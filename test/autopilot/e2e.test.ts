// Issue #8 end to end, on real embedded servers: a compressed simulated day of diurnal load through
// the proxy; the autopilot in auto mode splits the hot partition and moves a piece to another
// shard before the peak, and merges it back once the load has fallen; every acknowledged write is
// present exactly once on its owner throughout (the live-redistribution conservation check).
//
// Cluster: 3 shards, accounts + colocated items in 3 partitions (one per shard); the first is hot
// (diurnal), the other two cold (flat). Load: node-postgres writers through the proxy, paced
// to the curve, each operation a write transaction plus a key-routed report of 2,500 rows
// (diurnal-load.ts): the rows make the load score countable, where the latency term alone swings
// several-fold from second to second on a shared 2-core machine.
//
// Time: one real second is one simulated 15-minute step (config/clock.ts), for the recorder's
// buckets and for the autopilot (forecasts, plans, cooldowns). Heartbeats, leases and the mover
// keep real time, so a move lasts a few real seconds: an hour or two of simulated time.
// History: the previous SEED_DAYS simulated days are written straight into pgtide.load_history
// (fair: they are the past), with per-operation counters measured on today's first simulated
// hours, which really go through the proxy, as does the rest of the day.
// Not production defaults: forecast_priority = normal (at the default idle priority a saturated
// machine starves the forecast for simulated hours), mover grace 6 s and cutover budget 1 s.
// PGTIDE_E2E_DUMP=file writes the catalog's view of the day (history, forecasts, plans, jobs) as JSON.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { CompressedClock, type Clock } from '../../config/clock.js';
import { hashKey } from '../../config/hash.js';
import { loadScore } from '../../predictor/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { checkInvariants, DDL, Ledger } from '../mover/workload.js';
import { startDiurnalLoad, type DiurnalLoad } from './diurnal-load.js';

/**
 * `npm run demo` runs this file with PGTIDE_DEMO=1: the same day, narrated live (the autopilot's
 * actions and the jobs as they happen, with the URLs to watch them: psql on the admin database,
 * the status page), plus an announced campaign: SCHEDULE EVENT spring-sale 12:00–14:00 ×1.25 on
 * accounts, and the hot partition's load really is 1.25× then. The assertions are the test's.
 */
const DEMO = process.env.PGTIDE_DEMO === '1';
const CAMPAIGN_X = 1.25;
const say = (line: string) => process.stdout.write(`${line}\n`);

const SCALE = 900; // simulated ms per real ms
const STEP_S = 900;
const STEP = STEP_S * 1000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Simulated "today", 00:00 UTC. */
const DAY0 = Math.floor(Date.now() / DAY) * DAY;
const SEED_DAYS = 3;
/** The day's load runs from 08:00 to 20:00 and peaks at 14:00. */
const DAY_START_H = 8;
const DAY_HOURS = 12;
const PEAK = DAY0 + (DAY_START_H + DAY_HOURS / 2) * HOUR;
/** Hot partition at the peak, operations per real second (= per simulated step). */
const HOT_PEAK_OPS = 28;
/** Each cold partition, all day, as a fraction of the hot peak. */
const COLD_SHARE = 0.12;
/** Thresholds as fractions of the hot partition's peak load (why: where they are set below). */
const MAX_LOAD = 0.8;
const MIN_LOAD = 0.1;
const CAPACITY = 1.1;
const WARMUP_END = DAY0 + 2 * HOUR;
/**
 * 8 hours. A forecast takes seconds of real time, i.e. most of a simulated hour, and its last
 * steps are behind the plan made from it by then: the planner sees ~7 hours ahead.
 */
const HORIZON_STEPS = 32;
/** Give up (and report) when nothing merged by then: from about 02:30 the next morning is in the horizon. */
const SIM_DEADLINE = DAY0 + 28 * HOUR;
/** The demo's campaign (PGTIDE_DEMO=1 only), simulated. */
const CAMPAIGN_START = DAY0 + 12 * HOUR;
const CAMPAIGN_END = DAY0 + 14 * HOUR;
const campaign = (simMs: number): number => (DEMO && simMs >= CAMPAIGN_START && simMs < CAMPAIGN_END ? CAMPAIGN_X : 1);

/**
 * Diurnal shape: a flat night at 0.06 from 20:00 to 08:00, and a day that rises to 1 at 14:00 and
 * falls back (a squared raised cosine over 08:00–20:00): a quiet night long enough for the merge.
 */
function shape(simMs: number): number {
  const h = (((simMs - DAY0) % DAY) + DAY) % DAY / HOUR;
  if (h <= DAY_START_H || h >= DAY_START_H + DAY_HOURS) return 0.06;
  const g = (1 - Math.cos((2 * Math.PI * (h - DAY_START_H)) / DAY_HOURS)) / 2;
  return 0.06 + 0.94 * g * g;
}

const hhmm = (simMs: number): string => {
  const d = Math.floor((simMs - DAY0) / DAY);
  const t = new Date(simMs).toISOString().slice(11, 16);
  return d === 0 ? t : `${t} (day ${d >= 0 ? '+' : ''}${d})`;
};

let sim: CompressedClock | null = null;
/** Stands still at today's 00:00 until the simulated day starts (setup is not part of it). */
const clock: Clock = { scale: SCALE, now: () => (sim ? sim.now() : DAY0) };
let cluster: TestCluster;
let admin: pg.Client;
let app: pg.Client;
let shards: pg.Client[] = [];
let load: DiurnalLoad | null = null;
const ledger = new Ledger();
let hot: { id: number; lo: bigint; hi: bigint; shard: number };
let cold: { id: number; shard: number }[] = [];
const keys = new Map<number, number[]>();
const reportKeys = new Map<number, number[]>();

before(async () => {
  cluster = await startTestCluster({
    shards: 3, runJobs: true, clock, recordIntervalMs: 250, poolSize: 8,
    // Grace above the 5 s proxy lease; a cutover budget a loaded 2-core CI machine can meet.
    moverSettings: { graceMs: 6000, cutoverBudgetMs: 1000 },
  });
  // Setup load (DDL, preload) is not part of the simulated day.
  cluster.proxy.server.recorder.enabled = false;
  admin = await cluster.admin();
  app = await cluster.client();
  shards = [await cluster.shard(0), await cluster.shard(1), await cluster.shard(2)];
  for (const stmt of DDL.split(';').map((x) => x.trim()).filter(Boolean)) await app.query(stmt);
  await admin.query('SHARD TABLE accounts BY (id) PARTITIONS 3');
  await admin.query('SHARD TABLE items BY (account_id) COLOCATE WITH accounts');
  await admin.query('SET AUTOPILOT off');
  // A forecast at normal priority: at the default (idle-only CPU) a shared, saturated CI machine
  // can starve it for simulated hours.
  for (const [k, v] of Object.entries({ lstm: 'off', forecast_priority: 'normal', step_s: STEP_S, interval_s: STEP_S, horizon: HORIZON_STEPS, history_steps: (SEED_DAYS + 1) * 96, shard_min_utilization: 0.01 })) {
    await admin.query(`SET AUTOPILOT ${k} = ${v}`);
  }
  const routing = await cluster.proxy.catalog.loadRoutingTable();
  const ks = routing.tables.find((t) => t.name === 'accounts')!.keyspaceId!;
  const parts = routing.partitions.filter((p) => p.keyspaceId === ks).sort((a, b) => (a.lo < b.lo ? -1 : 1));
  assert.deepEqual(parts.map((p) => p.shardId), [0, 1, 2], 'one partition per shard');
  const h = parts[0]!;
  hot = { id: h.id, lo: h.lo, hi: h.hi, shard: h.shardId };
  cold = parts.slice(1).map((p) => ({ id: p.id, shard: p.shardId }));
  // Key pools per partition (half loaded before the day starts) and report keys (all loaded, never written).
  const want = (id: number) => (id === hot.id ? 600 : 240);
  // Many report keys: the split point balances accesses, and reports carry most of the load, so
  // a few keys could leave one piece with far more than half of it.
  const wantReports = (id: number) => (id === hot.id ? 300 : 100);
  for (const p of parts) {
    keys.set(p.id, []);
    reportKeys.set(p.id, []);
  }
  for (let k = 1; parts.some((p) => keys.get(p.id)!.length < want(p.id) || reportKeys.get(p.id)!.length < wantReports(p.id)); k++) {
    const hk = hashKey('int8', BigInt(k));
    const p = parts.find((x) => x.lo <= hk && hk < x.hi)!;
    if (reportKeys.get(p.id)!.length < wantReports(p.id)) reportKeys.get(p.id)!.push(k);
    else if (keys.get(p.id)!.length < want(p.id)) keys.get(p.id)!.push(k);
  }
  const byHash = (a: number, b: number) => (hashKey('int8', BigInt(a)) < hashKey('int8', BigInt(b)) ? -1 : 1);
  for (const list of [...keys.values(), ...reportKeys.values()]) list.sort(byHash);
  const preload = [...[...keys.values()].flatMap((list) => list.filter((_, i) => i % 2 === 0)), ...[...reportKeys.values()].flat()];
  for (let i = 0; i < preload.length; i += 200) {
    const batch = preload.slice(i, i + 200);
    await app.query(`INSERT INTO accounts (id, balance, note) VALUES ${batch.map((k) => `(${k}, ${k % 97}, 'preloaded')`).join(', ')}`);
    await app.query(`INSERT INTO items (account_id, seq, qty) VALUES ${batch.flatMap((k) => [`(${k}, 1, ${k % 7})`, `(${k}, 2, 3)`]).join(', ')}`);
    for (const k of batch) {
      ledger.accounts.set(k, k % 97);
      ledger.items.set(k, new Map([[1, k % 7], [2, 3]]));
    }
  }
  // Warm the proxy (route cache, connections, JIT) before the day: first statements are slow.
  const warm = startDiurnalLoad(cluster.url, ledger, classes(() => 8, () => 2), clock, STEP);
  await new Promise((r) => setTimeout(r, 3000));
  const warmed = await warm.stop();
  assert.deepEqual(warmed.errors, []);
});

/** The writer classes: the hot partition's keys (4 writers) and each cold partition's (1 writer). */
function classes(hotRate: (simMs: number) => number, coldRate: () => number) {
  return [
    { name: 'hot', keys: keys.get(hot.id)!, reportKeys: reportKeys.get(hot.id)!, writers: 4, rate: hotRate },
    ...cold.map((c) => ({ name: `cold${c.id}`, keys: keys.get(c.id)!, reportKeys: reportKeys.get(c.id)!, writers: 1, rate: coldRate })),
  ];
}

after(async () => {
  await load?.stop().catch(() => {});
  await cluster?.stop();
});

interface Action { id: number; at: number; kind: string; partitionId: number | null; otherId: number | null; lo: bigint | null; hi: bigint | null; fromShard: number | null; toShard: number | null; planId: string | null; step: number | null; detail: string }
interface Job { id: number; partitionId: number; lo: bigint; hi: bigint; source: number; target: number; state: string; created: number; cutover: number | null; finished: number | null }

async function actions(): Promise<Action[]> {
  const { rows } = await cluster.proxy.catalog.pool.query<{ id: number; at: Date; kind: string; partition_id: number | null; other_partition_id: number | null; lo: string | null; hi: string | null; from_shard: number | null; to_shard: number | null; plan_id: string | null; step: number | null; detail: string }>(
    'SELECT id, at, kind, partition_id, other_partition_id, lo::text, hi::text, from_shard, to_shard, plan_id, step, detail FROM pgtide.autopilot_actions ORDER BY id');
  return rows.map((r) => ({
    id: r.id, at: r.at.getTime(), kind: r.kind, partitionId: r.partition_id, otherId: r.other_partition_id,
    lo: r.lo === null ? null : BigInt(r.lo), hi: r.hi === null ? null : BigInt(r.hi), fromShard: r.from_shard, toShard: r.to_shard, planId: r.plan_id, step: r.step, detail: r.detail,
  }));
}

/** Jobs, with their real timestamps turned into simulated ones. */
async function jobs(): Promise<Job[]> {
  const { rows } = await cluster.proxy.catalog.pool.query<{ id: number; partition_id: number; lo: string; hi: string; source_shard: number; target_shard: number; state: string; created_at: Date; finished_at: Date | null; cutover_at: Date | null }>(
    `SELECT j.id, j.partition_id, j.lo::text, j.hi::text, j.source_shard, j.target_shard, j.state, j.created_at, j.finished_at,
            (SELECT min(e.at) FROM pgtide.job_events e WHERE e.job_id = j.id AND e.to_state = 'cleanup') AS cutover_at
       FROM pgtide.jobs j ORDER BY j.id`);
  const toSim = (d: Date | null) => (d === null ? null : sim!.toSim(d.getTime()));
  return rows.map((r) => ({
    id: r.id, partitionId: r.partition_id, lo: BigInt(r.lo), hi: BigInt(r.hi), source: r.source_shard, target: r.target_shard, state: r.state,
    created: toSim(r.created_at)!, cutover: toSim(r.cutover_at), finished: toSim(r.finished_at),
  }));
}

const inHot = (lo: bigint | null, hi: bigint | null) => lo !== null && hi !== null && hot.lo <= lo && hi <= hot.hi;
const unfinished = (js: Job[]) => js.filter((j) => !['done', 'rolled_back'].includes(j.state));

async function waitSim(simMs: number): Promise<void> {
  const deadline = Date.now() + Math.max(0, sim!.realUntil(simMs)) + 30_000;
  while (clock.now() < simMs) {
    if (Date.now() > deadline) throw new Error(`simulated ${hhmm(simMs)} never came`);
    if (load && load.stats.errors.length) throw new Error(`client errors: ${load.stats.errors.join('; ')}`);
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, sim!.realUntil(simMs)))));
  }
}

/** Pauses the writers, checks conservation, resumes them (only when no job is running). */
async function checkDuring(): Promise<boolean> {
  if (unfinished(await jobs()).length) return false;
  await load!.pause();
  try {
    if (unfinished(await jobs()).length) return false;
    await checkInvariants(shards, cluster.proxy.catalog, ledger);
    return true;
  } finally {
    load!.resume();
  }
}

/** For debugging a failure: the catalog's view of the day as JSON (PGTIDE_E2E_DUMP=file). */
async function dumpState(file: string): Promise<void> {
  const pool = cluster.proxy.catalog.pool;
  const q = async (sql: string) => (await pool.query(sql)).rows;
  const out = {
    history: await q(`SELECT partition_id, floor(extract(epoch FROM bucket) / 900)::bigint * 900000 AS t, sum(reads)::float8 r, sum(writes)::float8 w, sum(rows)::float8 n, sum(bytes_in + bytes_out)::float8 b, sum(latency_us)::float8 l
                        FROM pgtide.load_history WHERE proxy_id <> 999 GROUP BY 1, 2 ORDER BY 2, 1`),
    runs: await q('SELECT id, extract(epoch FROM at) * 1000 AS at, ms, notes FROM pgtide.forecast_runs ORDER BY id'),
    forecasts: await q('SELECT run_id, partition_id, extract(epoch FROM t) * 1000 AS t, mean, quantiles, model FROM pgtide.forecasts ORDER BY run_id, partition_id, t'),
    plans: await q('SELECT id, extract(epoch FROM created_at) * 1000 AS at, plan, applied FROM pgtide.plans ORDER BY created_at'),
    actions: await q('SELECT * FROM pgtide.autopilot_actions ORDER BY id'),
    jobs: await q('SELECT id, partition_id, source_shard, target_shard, state, created_at, finished_at FROM pgtide.jobs ORDER BY id'),
    dayStart: DAY0,
  };
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, JSON.stringify(out));
}

test('a compressed diurnal day through the proxy: auto splits and moves the hot partition before the peak, merges it back after, nothing lost', async (t) => {
  try {
    await day(t);
  } finally {
    if (process.env.PGTIDE_E2E_DUMP) await dumpState(process.env.PGTIDE_E2E_DUMP).catch(() => {});
  }
});

async function day(t: { diagnostic(msg: string): void }): Promise<void> {
  const timeline: [number, string][] = [];
  const note = (at: number, what: string) => {
    timeline.push([at, what]);
    if (DEMO) say(`  ${hhmm(at)}  ${what}`);
  };
  if (DEMO) {
    say(`pgtide demo: one simulated day (1 s real = 15 min simulated) on 3 embedded shards, autopilot in auto mode`);
    say(`  app:    psql "${cluster.url}"`);
    say(`  admin:  psql "${cluster.adminUrl}"   (SHOW FORECAST, SHOW PLAN, SHOW JOBS, SHOW PARTITIONS)`);
    if (cluster.proxy.httpPort) say(`  status: http://127.0.0.1:${cluster.proxy.httpPort}/   (forecast vs actual, plan, jobs)`);
  }
  const fail = (msg: string): never => {
    throw new Error(`${msg}\ntimeline:\n${timeline.sort((a, b) => a[0] - b[0]).map(([at, w]) => `  ${hhmm(at)}  ${w}`).join('\n')}`);
  };
  // ---- 00:00–02:00: the night starts through the proxy (autopilot off), per-operation counters are measured.
  sim = new CompressedClock({ simStartMs: DAY0, scale: SCALE });
  cluster.proxy.server.recorder.enabled = true;
  const url = cluster.url;
  const rate = {
    hot: (s: number) => HOT_PEAK_OPS * shape(s) * campaign(s),
    cold: () => HOT_PEAK_OPS * COLD_SHARE,
  };
  load = startDiurnalLoad(url, ledger, classes(rate.hot, rate.cold), clock, STEP);
  await waitSim(WARMUP_END);
  const pool = cluster.proxy.catalog.pool;
  const from = DAY0 + 2 * STEP;
  const to = WARMUP_END - STEP;
  const { rows: [m] } = await pool.query<{ reads: number; writes: number; rows: number; bytes: number; lat: number }>(
    `SELECT sum(reads)::float8 AS reads, sum(writes)::float8 AS writes, sum(rows)::float8 AS rows, sum(bytes_in + bytes_out)::float8 AS bytes, sum(latency_us)::float8 AS lat
       FROM pgtide.load_history WHERE bucket >= to_timestamp($1::float8 / 1000) AND bucket < to_timestamp($2::float8 / 1000)`, [from, to]);
  let ops = 0;
  for (const byStep of load.stats.opsByStep.values()) for (const [s, n] of byStep) if (s * STEP >= from && s * STEP < to) ops += n;
  assert.ok(ops > 20 && m && m.writes > 0, `the night load went through the proxy and was recorded (${ops} operations, ${JSON.stringify(m)})`);
  const perOp = { reads: m!.reads / ops, writes: m!.writes / ops, rows: m!.rows / ops, bytes: m!.bytes / ops, latencyUs: m!.lat / ops };
  const scorePerOp = loadScore({ ...perOp, latencyMs: perOp.latencyUs / 1000 });
  // Load units per second (the autopilot's unit) of the hot partition at the peak.
  const P = (HOT_PEAK_OPS * scorePerOp) / STEP_S;
  note(WARMUP_END, `measured ${ops} operations in ${(to - from) / STEP} steps: ${scorePerOp.toFixed(2)} load units per operation; hot peak P = ${P.toPrecision(3)} units/s`);

  // ---- The past SEED_DAYS days, with the same curve and counters (±3 % noise), straight into the history.
  const b: string[] = [], pid: number[] = [], cols: Record<keyof typeof perOp, number[]> = { reads: [], writes: [], rows: [], bytes: [], latencyUs: [] };
  let seed = 7;
  for (let s = DAY0 - SEED_DAYS * DAY; s < DAY0; s += STEP) {
    for (const p of [{ id: hot.id, ops: rate.hot(s) }, ...cold.map((c) => ({ id: c.id, ops: rate.cold() }))]) {
      seed = (seed * 48271) % 2147483647;
      const n = p.ops * (STEP / SCALE / 1000) * (1 + 0.06 * (seed / 2147483647 - 0.5));
      b.push(new Date(s).toISOString());
      pid.push(p.id);
      for (const k of Object.keys(cols) as (keyof typeof perOp)[]) cols[k].push(perOp[k] * n);
    }
  }
  await pool.query(
    `INSERT INTO pgtide.load_history (bucket, proxy_id, partition_id, table_name, interval_s, reads, writes, rows, bytes_in, latency_us)
     SELECT b, 999, p, 'accounts', $7, r, w, n, y, l FROM unnest($1::timestamptz[], $2::int[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $8::float8[]) AS u(b, p, r, w, n, y, l)`,
    [b, pid, cols.reads, cols.writes, cols.rows, cols.bytes, STEP_S, cols.latencyUs]);
  // Thresholds, in units of P. Split above 0.8 P: the hot partition (p90 ≈ 1.05–1.1 P at the
  // peak) splits in two, and each half (≈ 0.5 P) stays well under it. Capacity 1.1 P at the 80 %
  // cap = 0.88 P: the hot partition alone overloads shard 0 as the peak enters the horizon, and a
  // half plus a cold partition (0.62 P) fits on either other shard with room for noise. Merge
  // below 0.1 P: the cold partitions (0.12 P) never qualify; each half does from the evening (its
  // p90 stays under it for the whole horizon) until the next morning enters the horizon.
  for (const [k, v] of Object.entries({ partition_min_load: MIN_LOAD * P, partition_max_load: MAX_LOAD * P, shard_capacity: CAPACITY * P, shard_max_utilization: 0.8 })) {
    await admin.query(`SET AUTOPILOT ${k} = ${v}`);
  }
  if (DEMO) {
    await admin.query(`SCHEDULE EVENT spring_sale AT '${new Date(CAMPAIGN_START).toISOString()}' FOR '2 hours' ON accounts EXPECT ${CAMPAIGN_X}`);
    note(clock.now(), `SCHEDULE EVENT spring_sale at ${hhmm(CAMPAIGN_START)} for 2 h on accounts, expect ×${CAMPAIGN_X}`);
  }
  await admin.query('SET AUTOPILOT auto');
  const autoAt = clock.now();
  note(autoAt, `${SEED_DAYS} days of history seeded; SET AUTOPILOT auto (max ${(MAX_LOAD * P).toPrecision(3)}, min ${(MIN_LOAD * P).toPrecision(3)}, shard capacity ${(CAPACITY * P).toPrecision(3)} units/s)`);

  // ---- The rest of the day: watch the autopilot, check conservation once the move is done, until the merge.
  let checkedDuring: number | null = null;
  let merged: Action | undefined;
  let lastJobs: Job[] = [];
  const shown = new Set<string>();
  for (;;) {
    if (load.stats.errors.length) fail(`client errors: ${load.stats.errors.join('; ')}`);
    const acts = await actions();
    lastJobs = await jobs();
    if (DEMO) {
      // Live: each autopilot action and job state once, as it happens (the timeline repeats them at the end).
      for (const a of acts) if (!shown.has(`a${a.id}`)) { shown.add(`a${a.id}`); say(`  ${hhmm(clock.now())}  autopilot: ${a.detail}`); }
      for (const j of lastJobs) if (!shown.has(`j${j.id}${j.state}`)) { shown.add(`j${j.id}${j.state}`); say(`  ${hhmm(clock.now())}  job ${j.id} (partition ${j.partitionId}, shard ${j.source} → ${j.target}): ${j.state}`); }
    }
    const bad = lastJobs.find((j) => ['failed', 'paused', 'cancelled'].includes(j.state));
    if (bad) fail(`job ${bad.id} is ${bad.state}`);
    const hotMoveDone = lastJobs.some((j) => inHot(j.lo, j.hi) && j.state === 'done');
    if (hotMoveDone && checkedDuring === null && (await checkDuring())) checkedDuring = clock.now();
    merged = acts.find((a) => a.kind === 'merge' && a.lo === hot.lo && a.hi === hot.hi);
    if (merged && checkedDuring !== null && unfinished(lastJobs).length === 0) break;
    if (clock.now() > SIM_DEADLINE) {
      const log = (await admin.query('SHOW AUTOPILOT')).rows.filter((r) => r.kind === 'log').slice(0, 12).map((r) => `${r.name} ${r.value}`);
      fail(`no merge back by ${hhmm(SIM_DEADLINE)}; actions: ${acts.map((a) => `${hhmm(a.at)} ${a.detail}`).join(' | ')}\nautopilot log:\n${log.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  // No new job from here on: the final check needs every range on its owner only.
  await admin.query('SET AUTOPILOT recommend');
  const stats = await load.stop();
  load = null;
  const endAt = clock.now();
  assert.deepEqual(stats.errors, [], 'zero client errors');

  // ---- What the autopilot did, in simulated time.
  const acts = await actions();
  const all = await jobs();
  const splits = acts.filter((a) => a.kind === 'split' && inHot(a.lo, a.hi));
  const moves = acts.filter((a) => a.kind === 'move' && inHot(a.lo, a.hi));
  const plans = new Map<string, { steps: { n: number; trigger: string; deadlineMs?: number; startReason: string }[] }>();
  for (const a of acts) {
    if (!a.planId || plans.has(a.planId)) continue;
    const { rows } = await pool.query<{ plan: { steps: { n: number; trigger: string; deadlineMs?: number; startReason: string }[] } }>('SELECT plan FROM pgtide.plans WHERE id = $1', [a.planId]);
    if (rows[0]) plans.set(a.planId, rows[0].plan);
  }
  const stepOf = (a: Action) => plans.get(a.planId ?? '')?.steps.find((s) => s.n === a.step);
  for (const a of acts) note(a.at, `autopilot: ${a.detail}${stepOf(a) ? ` (plan ${a.planId} step ${a.step}, trigger ${stepOf(a)!.trigger}, start ${stepOf(a)!.startReason})` : ''}`);
  for (const j of all) {
    note(j.created, `job ${j.id}: move partition ${j.partitionId} shard ${j.source} → ${j.target} started`);
    if (j.cutover !== null) note(j.cutover, `job ${j.id}: routing switched to shard ${j.target} (cutover)`);
    if (j.finished !== null) note(j.finished, `job ${j.id}: ${j.state}`);
  }
  note(PEAK, `peak of the load curve (hot partition ${HOT_PEAK_OPS} operations/s)`);
  if (checkedDuring !== null) note(checkedDuring, 'conservation checked with the writers paused: every acknowledged write once, on its owner');
  const { rows: [fr] } = await pool.query<{ n: number; med: number }>(
    'SELECT count(*)::int AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::float8 AS med FROM pgtide.forecast_runs WHERE at >= to_timestamp($1::float8 / 1000)', [autoAt]);
  note(autoAt, `(${fr!.n} autopilot runs from here to the end, median forecast ${Math.round(fr!.med)} ms real)`);

  try {
    // 1. One split of the hot partition, made on the forecast, before the peak.
    // The demo's campaign raises the forecast: the hot range may be cut in more pieces, all before the peak.
    if (DEMO) assert.ok(splits.length >= 1 && splits.every((x) => x.at < PEAK), `the hot range was split before the peak: ${splits.map((x) => `${hhmm(x.at)} ${x.detail}`).join('; ')}`);
    else {
      // Once, usually. On a saturated CI machine the first plan came late (07:42, not ~05:20) and
      // the planner cut the remaining hot half once more before the peak (three pieces on three
      // shards, merged back in the evening). More than two splits, or one that is not planned
      // from the forecast before the peak, would be a cascade.
      assert.ok(splits.length >= 1 && splits.length <= 2, `the hot partition is split once or twice (no cascade): ${splits.map((s) => `${hhmm(s.at)} ${s.detail}`).join('; ')}`);
      for (const x of splits) {
        assert.ok(x.at < PEAK, `split at ${hhmm(x.at)}, before the peak`);
        assert.equal(stepOf(x)?.trigger, 'forecast', `the split at ${hhmm(x.at)} was planned from the forecast`);
      }
    }
    const split = splits[0]!;
    assert.equal(split.partitionId, hot.id);
    assert.ok(split.at < PEAK, `split at ${hhmm(split.at)}, before the peak`);
    assert.equal(stepOf(split)?.trigger, 'forecast', 'the split was planned from the forecast, not as a reaction');
    // 2. A piece moved to the other shard, on the forecast, switched and done before the peak.
    const out = moves[0];
    assert.ok(out, 'a piece of the hot partition was moved');
    assert.equal(out.fromShard, hot.shard);
    assert.notEqual(out.toShard, hot.shard);
    assert.equal(stepOf(out)?.trigger, 'forecast', 'the move was planned from the forecast');
    const outJob = all.find((j) => j.lo === out.lo && j.hi === out.hi && j.source === out.fromShard && j.target === out.toShard);
    assert.ok(outJob && outJob.state === 'done' && outJob.cutover !== null && outJob.finished !== null, `the move job finished: ${JSON.stringify(outJob, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
    assert.ok(outJob.finished! < PEAK, `move done at ${hhmm(outJob.finished!)}, before the peak at ${hhmm(PEAK)}`);
    const deadline = stepOf(out)?.deadlineMs;
    if (deadline !== undefined) note(deadline, `deadline of the move in its plan: the predicted crossing of the shard cap minus the safety margin`);
    // The forecast's own peak for the hot range, from the first run after the move started that sees past it.
    const { rows: runs } = await pool.query<{ id: string; at: Date }>('SELECT id, at FROM pgtide.forecast_runs WHERE at >= to_timestamp($1::float8 / 1000) ORDER BY id', [out.at]);
    let predictedPeak: number | null = null;
    for (const r of runs) {
      const { rows } = await pool.query<{ t: Date; m: number }>(
        `SELECT t, sum(mean)::float8 AS m FROM pgtide.forecasts WHERE run_id = $1 AND partition_id = ANY($2::int[]) GROUP BY t ORDER BY t`,
        [r.id, [hot.id, ...splits.map((x) => x.otherId)]]);
      if (rows.length < 3) continue;
      let k = 0;
      rows.forEach((x, i) => { if (x.m > rows[k]!.m) k = i; });
      if (k > 0 && k < rows.length - 2) {
        predictedPeak = rows[k]!.t.getTime();
        note(predictedPeak, `predicted peak of the hot range (forecast run ${r.id} made at ${hhmm(r.at.getTime())}: ${rows[k]!.m.toPrecision(3)} units/s mean)`);
        break;
      }
    }
    if (predictedPeak !== null) assert.ok(outJob.finished! < predictedPeak, `move done at ${hhmm(outJob.finished!)}, before the predicted peak at ${hhmm(predictedPeak)}`);
    // 3. Merged back after the peak, once the load had fallen (a move back first if the pieces were apart).
    assert.ok(merged, 'the pieces were merged back');
    assert.ok(merged.at > PEAK, `merge at ${hhmm(merged.at)}, after the peak`);
    assert.ok(shape(merged.at) < 0.35, `the load had fallen when merging (${(shape(merged.at) * 100).toFixed(0)} % of the peak)`);
    const back = moves.slice(1);
    for (const mv of back) {
      const j = all.find((x) => x.lo === mv.lo && x.hi === mv.hi && x.target === mv.toShard && x.created >= mv.at - STEP);
      assert.ok(j && j.state === 'done' && j.finished! <= merged.at + STEP, `the move back before the merge finished first (job ${j?.id} ${j?.state})`);
    }
    const routing = await cluster.proxy.catalog.loadRoutingTable();
    const whole = routing.partitions.find((p) => p.lo === hot.lo && p.hi === hot.hi);
    assert.ok(whole, 'the hot range is one partition again');
    // 4. Conservation during (writers paused after the move) and after everything.
    assert.ok(checkedDuring !== null, 'conservation was checked during the day');
    await checkInvariants(shards, cluster.proxy.catalog, ledger);
    assert.ok(stats.ops > 500, `the writers made progress (${stats.ops} operations)`);
    note(endAt, `writers stopped after ${stats.ops} acknowledged operations, 0 errors, ${cluster.proxy.server.counters.fenceRetries} writes retried after a fence; conservation checked again: exact`);
  } finally {
    for (const [at, w] of timeline.sort((a, c) => a[0] - c[0])) t.diagnostic(`${hhmm(at)}  ${w}`);
  }
}

