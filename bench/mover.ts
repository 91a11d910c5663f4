// Mover benchmarks (issue 6), three parts, selected with PGTIDE_BENCH_MOVER_PARTS (default all):
//
//  throughput  one partition's rows moved by a job vs a plain COPY TO STDOUT | COPY FROM STDIN pipe
//              between the same two servers (no proxy): psql | psql through a shell pipe, and the
//              same in Node with the mover's copyPipe; with a per-phase breakdown of the job
//  cutover     20 cutovers of a small partition under steady client load through an in-process
//              proxy: pause p50/p99/max as the mover reports it and as the clients saw it, per-step
//              medians, attempts and aborts (bench/mover/cutover.ts)
//  foreground  client p99 before a move vs during the copy phase of a bigger move, default
//              throttle (bench/mover/foreground.ts)
//
// Knobs (env): PGTIDE_BENCH_MOVER_ROWS (rows in the moved partition, throughput and foreground;
// default 200000), BENCH_ROUNDS (throughput and foreground rounds, default 2), BENCH_SECONDS
// (foreground window before each move, default 10), PGTIDE_BENCH_MOVER_CUTOVERS (20),
// PGTIDE_BENCH_MOVER_RATE (foreground ops/s, 400), PGTIDE_BENCH_MOVER_CLIENTS (8),
// PGTIDE_BENCH_MOVER_GRACE_MS (cleanup grace in the cutover/foreground cluster, 500),
// PGTIDE_BENCH_MOVER_THROTTLE (latencyFactor of the throughput moves; default off),
// PGTIDE_BENCH_MOVER_MAX_COPY_S (a foreground round's copy longer than this is cancelled, 180).
// Results: bench/results/mover.json (written by bench/run.ts).
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, startEmbeddedServer, type EmbeddedServer } from '../cli/embedded-server.js';
import { Catalog } from '../config/catalog.js';
import { copyPipe, Mover, type MoverHooks } from '../mover/index.js';
import { fillAccounts, startBenchCluster, type BenchCluster } from './mover/cluster.js';
import { runCutoverBench } from './mover/cutover.js';
import { runForegroundBench } from './mover/foreground.js';
import { fmt, nowMs, round } from './mover/stats.js';
import { phases, StepClock, TimedRoutingControl, type PhaseBreakdown } from './mover/timeline.js';

const exec = promisify(execFile);
const env = (name: string, dflt: number) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : dflt);
const ROWS = env('PGTIDE_BENCH_MOVER_ROWS', 200000);
const ROUNDS = env('BENCH_ROUNDS', 2);
/** PGTIDE_BENCH_MOVER_SETTINGS: JSON of mover settings for every move of the run (e.g. '{"copyInWorker":false}'). */
const benchSettings = (): Record<string, unknown> => JSON.parse(process.env.PGTIDE_BENCH_MOVER_SETTINGS || '{}') as Record<string, unknown>;

async function server(): Promise<{ s: EmbeddedServer; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-bench-mover-'));
  chmodSync(dir, 0o755);
  const s = await startEmbeddedServer({ dataDir: join(dir, 'pg'), port: await freePort(), user: 'postgres', password: 'bench', ephemeral: true });
  return { s, dir };
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const TABLE = 'CREATE TABLE accounts (id int8 PRIMARY KEY, balance int8 NOT NULL, note text)';
const PHASES: [keyof PhaseBreakdown, string][] = [['start', 'start'], ['preparing', 'prepare'], ['copying', 'copy'], ['catchingUp', 'catch-up'], ['verifyMs', '(verify)'],
  ['cutover', 'cutover'], ['grace', 'grace'], ['cleanupDelete', 'delete'], ['finish', 'finish'], ['total', 'total']];

type Run = { method: string; rows: number; bytes: number; seconds: number; rowsPerSec: number; mbPerSec: number };

/** Part 1: move throughput vs the COPY pipe, and where a job's time goes. */
async function throughput(): Promise<object> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  const servers = await Promise.all([server(), server(), server()]);
  const [cat, s0, s1] = servers.map((x) => x.s) as [EmbeddedServer, EmbeddedServer, EmbeddedServer];
  const rows: Run[] = [];
  const breakdowns: (PhaseBreakdown & { round: number; jobId: number })[] = [];
  const cutoverPauses: number[] = [];
  const clients: pg.Client[] = [];
  let catalog: Catalog | null = null;
  let mover: Mover | null = null;
  const psql = await exec('sh', ['-c', 'command -v psql']).then(() => true, () => false);
  try {
    for (const s of [s0, s1]) {
      const c = await client(s.url('postgres'));
      await c.query('CREATE DATABASE app');
      await c.end();
    }
    const a = await client(s0.url('app'));
    const b = await client(s1.url('app'));
    clients.push(a, b);
    await a.query(TABLE);
    await b.query(TABLE);
    catalog = await Catalog.open(cat.url('postgres'));
    await catalog.ensureShards([s0.url('app'), s1.url('app')]);
    await catalog.shardTable('accounts', 'id', 'int8', { partitions: 4 });
    const part = (await catalog.loadRoutingTable()).partitions[0]!; // [-2^63, -2^62) on shard 0
    await a.query(`INSERT INTO accounts SELECT g, g, md5(g::text) || md5((g * 7)::text)
      FROM generate_series(1, ${ROWS * 4}) g WHERE hashint8extended(g, 0) < '${part.hi}'::int8`);
    await a.query('VACUUM ANALYZE accounts');
    const n = Number((await a.query('SELECT count(*) AS n FROM accounts')).rows[0].n);
    const clock = new StepClock();
    const trace = process.env.PGTIDE_BENCH_TRACE;
    const hooks: MoverHooks = {
      onStep: (id, step) => {
        clock.hooks.onStep!(id, step);
        if (trace) process.stderr.write(`job ${id} ${step}\n`);
      },
    };
    const graceMs = 0;
    mover = new Mover({ catalog, settings: { graceMs, cutoverBudgetMs: 1000, latencyFactor: env('PGTIDE_BENCH_MOVER_THROTTLE', Infinity), ...benchSettings() }, hooks,
      ...(trace ? { log: { info: (o: object, m: string) => process.stderr.write(`${m} ${JSON.stringify(o)}\n`), warn: () => {} } } : {}) });
    for (let round = 0; round < ROUNDS; round++) {
      // Baseline: the plain pipe into an empty copy of the table (same indexes) on the target.
      // Rounds alternate direction: the rows are on shard 0 in even rounds, on shard 1 in odd ones.
      const [src, dst] = round % 2 === 0 ? [a, b] : [b, a];
      await dst.query('DROP TABLE IF EXISTS pipe_copy; CREATE TABLE pipe_copy (id int8 PRIMARY KEY, balance int8 NOT NULL, note text)');
      const t0 = performance.now();
      const p = await copyPipe(src, 'COPY accounts TO STDOUT', dst, 'COPY pipe_copy FROM STDIN');
      const ps = (performance.now() - t0) / 1000;
      rows.push({ method: 'COPY pipe (node)', rows: p.rows, bytes: p.bytes, seconds: ps, rowsPerSec: p.rows / ps, mbPerSec: p.bytes / ps / 1e6 });
      // The same through two psql processes and a shell pipe (no Node in the data path).
      if (psql) {
        await dst.query('DROP TABLE pipe_copy; CREATE TABLE pipe_copy (id int8 PRIMARY KEY, balance int8 NOT NULL, note text)');
        const [su, du] = round % 2 === 0 ? [s0.url('app'), s1.url('app')] : [s1.url('app'), s0.url('app')];
        const t2 = performance.now();
        await exec('sh', ['-c', 'psql "$SRC" -Xqc "COPY accounts TO STDOUT" | psql "$DST" -Xqc "COPY pipe_copy FROM STDIN"'], { env: { ...process.env, SRC: su, DST: du } });
        const qs = (performance.now() - t2) / 1000;
        const landed = Number((await dst.query('SELECT count(*) AS n FROM pipe_copy')).rows[0].n);
        if (landed !== p.rows) throw new Error(`psql pipe copied ${landed} of ${p.rows} rows`);
        rows.push({ method: 'COPY pipe (psql)', rows: p.rows, bytes: p.bytes, seconds: qs, rowsPerSec: p.rows / qs, mbPerSec: p.bytes / qs / 1e6 });
      }
      await dst.query('DROP TABLE pipe_copy');
      // The move there (odd rounds move it back).
      const target = round % 2 === 0 ? 1 : 0;
      const job = await mover.startMove(part.id, target);
      const j0 = nowMs();
      const done = await mover.runJob(job.id);
      const j1 = nowMs();
      if (done.state !== 'done') throw new Error(`bench move ended ${done.state}: ${done.error ?? done.reason}`);
      const d = await mover.jobDetail(job.id);
      // Not a timing check: a move that left rows behind or lost some would make the numbers meaningless.
      const inPart = `WHERE hashint8extended(id, 0) >= '${part.lo}'::int8 AND hashint8extended(id, 0) < '${part.hi}'::numeric`;
      const [left, there] = [Number((await src.query(`SELECT count(*) AS n FROM accounts ${inPart}`)).rows[0].n), Number((await dst.query(`SELECT count(*) AS n FROM accounts ${inPart}`)).rows[0].n)];
      if (left !== 0 || there !== n) throw new Error(`bench move ${job.id}: ${left} rows left on the source, ${there} of ${n} on the target`);
      const switchedAt = done.progress.switchedAt ? Date.parse(done.progress.switchedAt) : null;
      const ph = phases(clock, d, j0, j1, graceMs, switchedAt);
      breakdowns.push({ ...ph, round: round + 1, jobId: job.id });
      const add = (method: string, secs: number) => rows.push({ method, rows: d.rowsCopied, bytes: d.bytesCopied, seconds: secs, rowsPerSec: d.rowsCopied / secs, mbPerSec: d.bytesCopied / secs / 1e6 });
      add('move: copy phase', ph.copying / 1000);
      add('move: to switch', (ph.total - ph.grace - ph.cleanupDelete - ph.finish) / 1000);
      add('move: whole job', (ph.total - ph.grace) / 1000);
      if (d.cutoverPauseMs !== null) cutoverPauses.push(d.cutoverPauseMs);
    }
    const best = (m: string) => Math.max(...rows.filter((r) => r.method === m).map((r) => r.rowsPerSec));
    // The yardstick: the psql pipe when psql is installed (the issue's `COPY … TO STDOUT | COPY … FROM STDIN`), else the Node one.
    const pipe = psql ? Math.max(best('COPY pipe (psql)'), best('COPY pipe (node)')) : best('COPY pipe (node)');
    const ratio = best('move: copy phase') / pipe;
    const ratioSwitch = best('move: to switch') / pipe;
    const ratioJob = best('move: whole job') / pipe;
    say(`rows in the partition: ${n}`);
    say(`${'method'.padEnd(18)}  ${'rows'.padStart(8)} ${'MB'.padStart(7)} ${'s'.padStart(6)} ${'rows/s'.padStart(9)} ${'MB/s'.padStart(6)}`);
    for (const r of rows) {
      say(`${r.method.padEnd(18)}  ${String(r.rows).padStart(8)} ${(r.bytes / 1e6).toFixed(1).padStart(7)} ${r.seconds.toFixed(2).padStart(6)} ${Math.round(r.rowsPerSec).toString().padStart(9)} ${r.mbPerSec.toFixed(1).padStart(6)}`);
    }
    say('');
    say(`where a job's time goes (s): ${PHASES.map(([, l]) => l.padStart(8)).join('')}`);
    for (const b of breakdowns) say(`  round ${b.round} (job ${b.jobId})`.padEnd(29) + PHASES.map(([k]) => fmt((b[k] as number | null ?? NaN) / 1000, 2).padStart(8)).join(''));
    say('  start: runJob → preparing; catch-up: drain + verification ((verify): catching_up → the verification note, incl. the first drain);');
    say('  "whole job" = total − grace (graceMs is 0 here; any grace wait is excluded: it is a safety delay, not work); "to switch" = until the routing switch (the target serves the range)');
    say(`pipe = the faster of the two pipes' best rounds (${Math.round(pipe)} rows/s)`);
    say(`copy phase / pipe: ${ratio.toFixed(2)}x (target ≥ 0.5x); to switch / pipe: ${ratioSwitch.toFixed(2)}x; whole job / pipe: ${ratioJob.toFixed(2)}x; cutover pause ms (no load): ${cutoverPauses.map((x) => x.toFixed(1)).join(', ')}`);
    return { rowsInPartition: n, pipeRowsPerSec: pipe, runs: rows, phases: breakdowns.map((b) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, typeof v === 'number' && !['round', 'jobId'].includes(k) ? round(v, 1) : v]))),
      copyPhaseVsPipe: ratio, toSwitchVsPipe: ratioSwitch, wholeJobVsPipe: ratioJob, cutoverPauseMs: cutoverPauses };
  } finally {
    await mover?.close().catch(() => {});
    await catalog?.close().catch(() => {});
    await Promise.allSettled(clients.map((c) => c.end()));
    await Promise.allSettled(servers.map(async (x) => {
      await x.s.stop();
      rmSync(x.dir, { recursive: true, force: true });
    }));
  }
}

/** Parts 2 and 3 share one cluster with an in-process proxy. */
async function underLoad(parts: Set<string>): Promise<{ cutover?: object; foreground?: object }> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  const PARTITIONS = 8;
  const BASE_ROWS = env('PGTIDE_BENCH_MOVER_CUTOVER_ROWS', 20000);
  const load = {
    clients: env('PGTIDE_BENCH_MOVER_CLIENTS', 8), rate: env('PGTIDE_BENCH_MOVER_RATE', 400), readShare: 0.5, writeShare: 0.35, seed: 42,
  };
  let cl: BenchCluster | null = null;
  let mover: Mover | null = null;
  // Ctrl-C / SIGTERM: stop the servers this bench started before exiting.
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`${sig}: stopping the bench cluster\n`);
    void Promise.resolve(cl?.stop()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    cl = await startBenchCluster({ partitions: PARTITIONS, poolSize: 16 });
    const byPartition = await fillAccounts(cl, BASE_ROWS);
    const allKeys = [...byPartition.values()].flat();
    const clock = new StepClock();
    const control = new TimedRoutingControl(cl.proxy.mover.routing);
    // As on the leader: the mover sees the proxy's foreground latencies (its throttle bounds them).
    mover = new Mover({ catalog: cl.proxy.catalog, routing: control, foreground: cl.proxy.server.counters.latency, settings: { graceMs: env('PGTIDE_BENCH_MOVER_GRACE_MS', 500), ...benchSettings() }, hooks: clock.hooks });
    const onShard0 = cl.partitions().filter((p) => p.shardId === 0);
    const out: { cutover?: object; foreground?: object } = {};
    if (parts.has('cutover')) {
      const p = onShard0[0]!;
      const moving = byPartition.get(p.id)!;
      say('');
      out.cutover = await runCutoverBench(cl, mover, control, clock, {
        cutovers: env('PGTIDE_BENCH_MOVER_CUTOVERS', 20), partitionId: p.id, movingKeys: moving, otherKeys: allKeys.filter((k) => !moving.includes(k)),
        load: { ...load, movingShare: 0.5 }, warmupMs: 2000,
      });
    }
    if (parts.has('foreground')) {
      const q = onShard0[1] ?? onShard0[0]!;
      say('');
      out.foreground = await runForegroundBench(cl, mover, clock, {
        rounds: ROUNDS, beforeMs: env('BENCH_SECONDS', 10) * 1000, partitionId: q.id, rows: ROWS, baseRows: BASE_ROWS, partitions: PARTITIONS,
        keys: allKeys, movingKeys: byPartition.get(q.id)!, load, maxCopyMs: env('PGTIDE_BENCH_MOVER_MAX_COPY_S', 180) * 1000,
      });
    }
    return out;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await mover?.close().catch(() => {});
    await cl?.stop().catch(() => {});
  }
}

export async function run(): Promise<object> {
  const parts = new Set((process.env.PGTIDE_BENCH_MOVER_PARTS ?? 'throughput,cutover,foreground').split(',').map((s) => s.trim()).filter(Boolean));
  const result: Record<string, unknown> = { note: 'numbers from a shared 2-core machine are noisy; compare ratios within one run' };
  if (parts.has('throughput')) {
    process.stdout.write('-- throughput: move vs COPY pipe --\n');
    Object.assign(result, await throughput());
  }
  if (parts.has('cutover') || parts.has('foreground')) {
    process.stdout.write('\n-- under load: in-process proxy, catalog + 2 shards --\n');
    Object.assign(result, await underLoad(parts));
  }
  return result;
}
