// Foreground latency during a move vs before it: the same steady client load through the proxy
// (reads, writes, short transactions over every partition's keys) measured for N seconds with no
// job running, then during the copy phase of a bigger move (one partition filled to R rows), with
// the mover's default throttle, then N seconds after the job (a check of how much the machine
// itself drifted). Rounds alternate the move's direction. Per round: client-side p50 and p99 of
// every operation that started in the window, the ratio of the p99s (issue 6 asks ≤ 2×), and the
// throttle's state at the end of the copy (chunk size, delay, throttled chunks). In the windows
// without a job the throttle's own probe query is timed too (10/s, from this process, as the
// mover times it): if it is above the throttle's bound with no copy running, the throttle is
// reacting to the machine, not to the copy. The event-loop lag of this thread (where the proxy and
// the mover run, as on the leader) is sampled every 5 ms: the copy's rows pass through it.
import pg from 'pg';
import type { Mover } from '../../mover/index.js';
import type { BenchCluster } from './cluster.js';
import { startedIn, startLoad, type LoadOptions, type LoadRecords } from './load.js';
import { fmt, LoopLag, median, nowMs, quantile, round } from './stats.js';
import type { StepClock } from './timeline.js';

export interface ForegroundBenchOptions {
  rounds: number;
  beforeMs: number;
  partitionId: number;
  /** Rows the moving partition is filled to (besides the load's own keys). */
  rows: number;
  /** ids 1..baseRows hold the load's keys. */
  baseRows: number;
  partitions: number;
  keys: number[];
  movingKeys: number[];
  load: Omit<LoadOptions, 'url' | 'movingKeys' | 'otherKeys' | 'movingShare'>;
  /** A copy phase longer than this is paused and cancelled, and the round reported as starved. */
  maxCopyMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Time the mover's probe query on `url` every 100 ms for `ms` ms (no job running). */
async function idleProbes(url: string, keys: number[], ms: number): Promise<number[]> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => {});
  const out: number[] = [];
  try {
    await pool.query('SELECT 1');
    const end = nowMs() + ms;
    for (let i = 0; nowMs() < end; i++) {
      const t0 = nowMs();
      await pool.query('SELECT 1 FROM accounts WHERE id = $1 LIMIT 1', [keys[(i * 7919) % keys.length]]);
      out.push(nowMs() - t0);
      await sleep(Math.max(0, 100 - (nowMs() - t0)));
    }
  } finally {
    await pool.end().catch(() => {});
  }
  return out;
}

export async function runForegroundBench(cl: BenchCluster, mover: Mover, clock: StepClock, o: ForegroundBenchOptions): Promise<object> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  // Fill the partition to `rows` rows on its current owner, with ids above the load's keys.
  const part = cl.partitions().find((p) => p.id === o.partitionId)!;
  const owner = await cl.shard(part.shardId);
  const candidates = Math.ceil(o.rows * o.partitions * 1.1);
  await owner.query(`INSERT INTO accounts SELECT g, 0, md5(g::text) || md5((g * 7)::text) FROM generate_series($1::int8, $2::int8) g
    WHERE hashint8extended(g, 0) >= $3::int8 AND hashint8extended(g, 0) < $4::numeric`, [o.baseRows + 1, o.baseRows + candidates, part.lo.toString(), part.hi.toString()]);
  await owner.query('VACUUM ANALYZE accounts');
  const n = Number((await owner.query('SELECT count(*) AS n FROM accounts WHERE hashint8extended(id, 0) >= $1::int8 AND hashint8extended(id, 0) < $2::numeric', [part.lo.toString(), part.hi.toString()])).rows[0].n);
  const moving = new Set(o.movingKeys);
  const others = o.keys.filter((k) => !moving.has(k));
  const share = o.movingKeys.length / o.keys.length;
  say(`foreground: ${o.load.rate} ops/s on ${o.load.clients} clients over all ${o.keys.length} keys (${Math.round(share * 100)} % on the moving partition); ` +
    `${o.beforeMs / 1000} s before each move, then the copy phase of a move of partition ${o.partitionId} (${n} rows); default throttle (latencyFactor ${mover.settings.latencyFactor}, ` +
    `floor ${mover.settings.latencyFloorMs} ms, chunk ${mover.settings.chunkRows} rows, max delay ${mover.settings.maxDelayMs} ms); ${o.rounds} rounds`);
  const lag = new LoopLag().start();
  const load = await startLoad({ ...o.load, url: cl.url, movingKeys: o.movingKeys, otherKeys: others, movingShare: share });
  type Round = { before: [number, number]; copy: [number, number]; job: [number, number]; after: [number, number]; jobId: number; from: number; to: number; throttle: unknown; chunks: number; rowsCopied: number; starved: boolean; idleProbesMs: number[] };
  const rounds: Round[] = [];
  let records: LoadRecords;
  try {
    await sleep(1000);
    for (let r = 0; r < o.rounds; r++) {
      const p = cl.partitions().find((x) => x.id === o.partitionId)!;
      const b0 = nowMs();
      const probes = await idleProbes(cl.shards[p.shardId]!.url('app'), o.movingKeys, o.beforeMs);
      const b1 = nowMs();
      const target = p.shardId === 0 ? 1 : 0;
      const job = await mover.startMove(o.partitionId, target);
      const j0 = nowMs();
      // Progress every 5 s; a copy the throttle keeps under its cap is paused and cancelled (reported).
      let starved = false;
      const ticker = setInterval(() => void (async () => {
        const j = await mover.store.load(job.id);
        const t = j.progress.throttle;
        say(`    ${((nowMs() - j0) / 1000).toFixed(0)} s: ${j.state}, ${j.progress.rowsCopied ?? 0} rows copied; throttle chunk ${t?.chunkRows ?? '-'} rows, delay ${fmt(t?.delayMs ?? NaN, 0)} ms, ` +
          `${t?.throttledChunks ?? 0} chunks throttled, probes ${(t?.recentMs ?? []).map((x) => x.toFixed(1)).join('/')} ms vs bound ${fmt(t?.boundMs ?? NaN, 2)} ms; ` +
          `proxy's p99 on the source ${(t?.fgRecentMs ?? []).map((x) => x.toFixed(1)).join('/') || '-'} ms vs pre-copy ${fmt(t?.fgBaselineMs ?? NaN, 1)} ms`);
        const c0 = clock.first(job.id, 'state:copying');
        if (!starved && c0 !== null && clock.first(job.id, 'state:catching_up') === null && nowMs() - c0 > o.maxCopyMs) {
          starved = true;
          say(`    the copy has run ${o.maxCopyMs / 1000} s: pausing and cancelling job ${job.id}`);
          await mover.pause(job.id);
        }
      })().catch((err: Error) => say(`    progress: ${err.message}`)), 5000);
      let done = await mover.runJob(job.id).finally(() => clearInterval(ticker));
      const j1 = nowMs();
      if (starved && done.state === 'paused') {
        await mover.cancel(job.id);
        done = await mover.runJob(job.id);
        const d = await mover.jobDetail(job.id);
        say(`  round ${r + 1}: job ${job.id} starved by the throttle: ${d.rowsCopied} rows in ${fmt((j1 - j0) / 1000, 0)} s; rolled back (${done.state})`);
        const a0 = nowMs();
        probes.push(...await idleProbes(cl.shards[p.shardId]!.url('app'), o.movingKeys, o.beforeMs));
        rounds.push({ before: [b0, b1], copy: [clock.first(job.id, 'state:copying') ?? j0, j1], job: [j0, j1], after: [a0, nowMs()], jobId: job.id, from: p.shardId, to: target,
          throttle: d.throttle, chunks: clock.count(job.id, 'chunk'), rowsCopied: d.rowsCopied, starved: true, idleProbesMs: probes });
        break;
      }
      if (done.state !== 'done') {
        say(`  server errors: ${cl.serverErrors().slice(-10).join('\n    ') || 'none'}`);
        throw new Error(`foreground bench: job ${job.id} ended ${done.state}: ${done.error ?? done.reason}`);
      }
      const d = await mover.jobDetail(job.id);
      const c0 = clock.first(job.id, 'state:copying') ?? j0;
      const c1 = clock.first(job.id, 'state:catching_up') ?? j1;
      say(`  round ${r + 1}: job ${job.id} shard ${p.shardId} → ${target}, copy ${fmt((c1 - c0) / 1000, 2)} s, whole job ${fmt((j1 - j0) / 1000, 2)} s`);
      await sleep(1000);
      const a0 = nowMs();
      probes.push(...await idleProbes(cl.shards[target]!.url('app'), o.movingKeys, o.beforeMs));
      rounds.push({ before: [b0, b1], copy: [c0, c1], job: [j0, j1], after: [a0, nowMs()], jobId: job.id, from: p.shardId, to: target,
        throttle: d.throttle, chunks: clock.count(job.id, 'chunk'), rowsCopied: d.rowsCopied, starved: false, idleProbesMs: probes });
    }
  } finally {
    lag.stop();
    records = await load.stop().catch(async (err: unknown) => {
      await load.kill();
      throw err;
    });
  }
  const q = (xs: number[]) => ({ n: xs.length, p50: round(quantile(xs, 0.5), 2), p99: round(quantile(xs, 0.99), 2), max: round(Math.max(...xs), 1) });
  const out = rounds.map((r, i) => {
    const before = q(startedIn(records, r.before[0], r.before[1]));
    const copy = q(startedIn(records, r.copy[0], r.copy[1]));
    const job = q(startedIn(records, r.job[0], r.job[1]));
    const after = q(startedIn(records, r.after[0], r.after[1]));
    const bound = (r.throttle as { boundMs?: number } | null)?.boundMs ?? NaN;
    const loop = (w: [number, number]) => { const xs = lag.within(w[0], w[1]); return { p50: round(quantile(xs, 0.5), 2), p99: round(quantile(xs, 0.99), 2) }; };
    const loopLag = { before: loop(r.before), duringCopy: loop(r.copy), after: loop(r.after) };
    const idle = { n: r.idleProbesMs.length, p50: round(quantile(r.idleProbesMs, 0.5), 2), p90: round(quantile(r.idleProbesMs, 0.9), 2),
      aboveBound: round(r.idleProbesMs.filter((x) => x > bound).length / Math.max(1, r.idleProbesMs.length), 2) };
    const copyMoving = q(startedIn(records, r.copy[0], r.copy[1], (k) => records.moving[k] === 1));
    const beforeMoving = q(startedIn(records, r.before[0], r.before[1], (k) => records.moving[k] === 1));
    return { round: i + 1, jobId: r.jobId, from: r.from, to: r.to, starved: r.starved, copySeconds: round((r.copy[1] - r.copy[0]) / 1000, 2), rowsCopied: r.rowsCopied,
      before, duringCopy: copy, wholeJob: job, after, idleProbeMs: idle, proxyLoopLagMs: loopLag, beforeMovingRange: beforeMoving, duringCopyMovingRange: copyMoving,
      p99Ratio: round(copy.p99 / before.p99, 2), throttle: r.throttle, chunks: r.chunks };
  });
  say('');
  say(`${'round'.padEnd(6)}${'window'.padEnd(22)}${'ops'.padStart(7)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}`);
  for (const r of out) {
    const line = (name: string, x: { n: number; p50: number; p99: number; max: number }) =>
      say(`${String(r.round).padEnd(6)}${name.padEnd(22)}${String(x.n).padStart(7)}${fmt(x.p50, 2).padStart(9)}${fmt(x.p99, 2).padStart(9)}${fmt(x.max, 1).padStart(9)}`);
    line('before the move', r.before);
    line('during the copy', r.duringCopy);
    line('whole job', r.wholeJob);
    line('after the move', r.after);
    line('  moving range, before', r.beforeMovingRange);
    line('  moving range, copy', r.duringCopyMovingRange);
    const t = r.throttle as { chunkRows?: number; delayMs?: number; throttledChunks?: number; baselineMs?: number; boundMs?: number; lastProbeMs?: number } | null;
    if (r.starved) say(`      STARVED: the throttle kept the copy at ${r.rowsCopied} rows after ${fmt(r.copySeconds, 0)} s; the job was cancelled`);
    say(`      event-loop lag of the proxy+mover thread, p50/p99 ms: before ${fmt(r.proxyLoopLagMs.before.p50, 2)}/${fmt(r.proxyLoopLagMs.before.p99, 1)}, ` +
      `during the copy ${fmt(r.proxyLoopLagMs.duringCopy.p50, 2)}/${fmt(r.proxyLoopLagMs.duringCopy.p99, 1)}, after ${fmt(r.proxyLoopLagMs.after.p50, 2)}/${fmt(r.proxyLoopLagMs.after.p99, 1)}`);
    say(`      the throttle's probe with no job running (before + after): p50 ${fmt(r.idleProbeMs.p50, 2)} ms, p90 ${fmt(r.idleProbeMs.p90, 2)} ms, ` +
      `${Math.round(r.idleProbeMs.aboveBound * 100)} % above the job's bound (n=${r.idleProbeMs.n})`);
    say(`      p99 during copy / before: ${fmt(r.p99Ratio, 2)}x; throttle at the end of the copy: chunk ${t?.chunkRows ?? '-'} rows, delay ${fmt(t?.delayMs ?? NaN, 0)} ms, ` +
      `${t?.throttledChunks ?? '-'} of ${r.chunks} chunks throttled, probe baseline ${fmt(t?.baselineMs ?? NaN, 2)} ms, bound ${fmt(t?.boundMs ?? NaN, 2)} ms, last probe ${fmt(t?.lastProbeMs ?? NaN, 2)} ms; ${r.rowsCopied} rows in ${fmt(r.copySeconds, 2)} s`);
  }
  const ratio = median(out.map((r) => r.p99Ratio));
  const failed = records.failed.reduce((a, f) => a + f, 0);
  say(`foreground p99 during the copy / before the move, median over rounds: ${fmt(ratio, 2)}x (target ≤ 2x); client errors: ${failed}${failed ? ` ${JSON.stringify(records.errors)}` : ''}; late slots: ${records.late}`);
  return { rowsInPartition: n, load: { ...o.load, keys: o.keys.length, movingShare: share, ops: records.start.length, failed, errors: records.errors, late: records.late }, beforeSeconds: o.beforeMs / 1000,
    rounds: out, p99RatioMedian: ratio, p99BeforeMedianMs: median(out.map((r) => r.before.p99)), p99DuringCopyMedianMs: median(out.map((r) => r.duringCopy.p99)) };
}
