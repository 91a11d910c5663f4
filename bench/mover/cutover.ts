// Cutover pause under load: one small partition moved back and forth between the two shards N times
// (default 20) while node-postgres clients read, write and run short transactions through the
// in-process proxy at a steady rate, half of them on the moving partition's keys.
//
// Per cutover it reports two pauses:
//  * the mover's: `job.cutover.pauseMs` (hold → release, measured by runCutover) and its steps;
//  * the clients': the longest latency, measured at the client, of any operation on the moving
//    range that was in flight at some moment between holdRange and release (as the proxy got
//    them). That operation's latency includes its normal service time, so it is an upper bound
//    of what the hold added. The same for operations on other ranges in the same window is
//    printed beside it (they are not held; it shows how noisy the machine was right then).
// Aborted attempts (budget exceeded, step failed) are counted and listed with their reasons.
import type { Mover } from '../../mover/index.js';
import type { BenchCluster } from './cluster.js';
import { KIND_NAMES, overlapping, startLoad, type LoadOptions, type LoadRecords } from './load.js';
import { fmt, median, max, nowMs, quantile, round, summary } from './stats.js';
import type { StepClock, TimedRoutingControl } from './timeline.js';

const STEPS = ['holdTraffic', 'waitForInFlight', 'fenceSource', 'drainFinalChanges', 'switchRouting', 'installRouting', 'releaseTraffic'] as const;
const SHORT = ['hold', 'wait', 'fence', 'drain', 'switch', 'install', 'release'];

export interface CutoverBenchOptions {
  cutovers: number;
  partitionId: number;
  movingKeys: number[];
  otherKeys: number[];
  load: Omit<LoadOptions, 'url' | 'movingKeys' | 'otherKeys'>;
  warmupMs: number;
}

interface AttemptRaw {
  jobId: number;
  attempt: number;
  ok: boolean;
  reason?: string;
  pauseMs: number;
  steps: Record<string, number>;
  holdAt: number | null;
  releasedAt: number | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runCutoverBench(cl: BenchCluster, mover: Mover, control: TimedRoutingControl, clock: StepClock, o: CutoverBenchOptions): Promise<object> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  say(`cutover: partition ${o.partitionId} (${o.movingKeys.length} keys, ${o.otherKeys.length} keys elsewhere) moved ${o.cutovers}× back and forth; load ${o.load.rate} ops/s on ${o.load.clients} clients ` +
    `(${Math.round(o.load.readShare * 100)} % reads, ${Math.round(o.load.writeShare * 100)} % writes, ${Math.round((1 - o.load.readShare - o.load.writeShare) * 100)} % 4-statement transactions), ` +
    `${Math.round(o.load.movingShare * 100)} % on the moving partition; cutover budget ${mover.settings.cutoverBudgetMs} ms`);
  const load = await startLoad({ ...o.load, url: cl.url, movingKeys: o.movingKeys, otherKeys: o.otherKeys });
  const attempts: AttemptRaw[] = [];
  const jobs: { id: number; from: number; to: number; state: string; ms: number; attempts: number; pausedAndResumed: number }[] = [];
  let records: LoadRecords;
  try {
    await sleep(o.warmupMs);
    for (let i = 0; i < o.cutovers; i++) {
      const part = cl.partitions().find((p) => p.id === o.partitionId)!;
      const target = part.shardId === 0 ? 1 : 0;
      const job = await mover.startMove(o.partitionId, target);
      const t0 = nowMs();
      let done = await mover.runJob(job.id);
      let resumed = 0;
      // A job that ran out of cutover attempts pauses; the series goes on (counted, and reported).
      while (done.state === 'paused' && resumed < 3) {
        resumed++;
        say(`  job ${job.id} paused: ${done.reason}; resuming`);
        await mover.resume(job.id);
        done = await mover.runJob(job.id);
      }
      const ms = nowMs() - t0;
      if (done.state !== 'done') {
        say(`  server errors: ${cl.serverErrors().slice(-10).join('\n    ') || 'none'}`);
        throw new Error(`cutover bench: job ${job.id} ended ${done.state}: ${done.error ?? done.reason}`);
      }
      const row = await mover.store.load(job.id);
      const windows = control.forJob(job.id);
      const recs = row.cutover?.attempts ?? [];
      recs.forEach((a, k) => {
        const steps: Record<string, number> = {};
        for (const s of a.steps) steps[s.step] = s.ms;
        const w = windows[k];
        attempts.push({ jobId: job.id, attempt: k + 1, ok: a.ok, ...(a.reason ? { reason: a.reason } : {}), pauseMs: a.pauseMs, steps, holdAt: w?.holdAt ?? null, releasedAt: w?.releasedAt ?? null });
      });
      jobs.push({ id: job.id, from: part.shardId, to: target, state: done.state, ms, attempts: recs.length, pausedAndResumed: resumed });
      if (windows.length !== recs.length) say(`  note: job ${job.id} recorded ${recs.length} attempts but the proxy saw ${windows.length} holds`);
    }
    await sleep(500);
  } finally {
    records = await load.stop().catch(async (err: unknown) => {
      await load.kill();
      throw err;
    });
  }

  // ---- client-side view of each attempt
  const isMoving = (i: number) => records.moving[i] === 1;
  const inAnyWindow = new Uint8Array(records.start.length);
  const rows = attempts.map((a) => {
    if (a.holdAt === null || a.releasedAt === null) return { ...a, clientMaxMs: NaN, clientOps: 0, otherMaxMs: NaN, clientFailed: 0, worstKind: '' };
    const mine = overlapping(records, a.holdAt, a.releasedAt, isMoving);
    const other = overlapping(records, a.holdAt, a.releasedAt, (i) => !isMoving(i));
    for (const i of mine) inAnyWindow[i] = 1;
    let worst = -1;
    for (const i of mine) if (worst < 0 || records.dur[i]! > records.dur[worst]!) worst = i;
    return {
      ...a,
      clientMaxMs: worst < 0 ? 0 : records.dur[worst]!,
      worstKind: worst < 0 ? '' : KIND_NAMES[records.kind[worst]!]!,
      clientOps: mine.length,
      clientFailed: mine.filter((i) => records.failed[i] === 1).length,
      otherMaxMs: max(other.map((i) => records.dur[i]!)),
    };
  });
  const outside: number[] = [];
  for (let i = 0; i < records.start.length; i++) if (isMoving(i) && !inAnyWindow[i]) outside.push(records.dur[i]!);
  const ok = rows.filter((r) => r.ok);
  const aborted = rows.filter((r) => !r.ok);
  const failedOps = records.failed.reduce((n, f) => n + f, 0);

  say('');
  say(`${'job'.padStart(4)} ${'try'.padStart(3)} ${'ok'.padStart(3)} ${'mover ms'.padStart(9)} ${'client ms'.padStart(9)} ${'(kind)'.padEnd(6)} ${'ops'.padStart(4)} ${'others'.padStart(7)}  ${SHORT.map((s) => s.padStart(7)).join(' ')}`);
  for (const r of rows) {
    say(`${String(r.jobId).padStart(4)} ${String(r.attempt).padStart(3)} ${(r.ok ? 'yes' : 'NO').padStart(3)} ${fmt(r.pauseMs).padStart(9)} ${fmt(r.clientMaxMs).padStart(9)} ${r.worstKind.padEnd(6)} ${String(r.clientOps).padStart(4)} ${fmt(r.otherMaxMs).padStart(7)}  ${STEPS.map((s) => fmt(r.steps[s] ?? NaN).padStart(7)).join(' ')}`);
  }
  say('(step columns: hold, wait in flight, fence, drain, switch, install, release; ms)');
  const stepMedians: Record<string, { median: number; max: number }> = {};
  for (const s of STEPS) {
    const xs = ok.map((r) => r.steps[s]).filter((x): x is number => x !== undefined);
    stepMedians[s] = { median: round(median(xs), 2), max: round(max(xs), 2) };
  }
  const moverPause = summary(ok.map((r) => r.pauseMs));
  const clientPause = summary(ok.map((r) => r.clientMaxMs));
  const baseline = summary(outside);
  say('');
  say(`successful cutovers: ${ok.length} of ${rows.length} attempts (${aborted.length} aborted) in ${jobs.length} jobs; jobs paused after ${mover.settings.cutoverAttempts} aborts and resumed: ${jobs.reduce((n, j) => n + j.pausedAndResumed, 0)}`);
  for (const r of aborted) say(`  aborted: job ${r.jobId} attempt ${r.attempt} after ${fmt(r.pauseMs)} ms: ${r.reason}`);
  say(`pause reported by the mover (hold → release), ms: p50 ${fmt(moverPause.p50)}  p99 ${fmt(moverPause.p99)}  max ${fmt(moverPause.max)}   (target p99 ≤ 100)`);
  say(`pause seen by clients (longest op on the range in flight during the hold), ms: p50 ${fmt(clientPause.p50)}  p99 ${fmt(clientPause.p99)}  max ${fmt(clientPause.max)}`);
  say(`  for comparison, ops on the moving range outside any cutover: p50 ${fmt(baseline.p50, 2)}  p99 ${fmt(baseline.p99, 2)}  max ${fmt(baseline.max)} ms (n=${baseline.n})`);
  say(`  (with ${ok.length} cutovers, nearest-rank p99 is the maximum)`);
  say(`step medians (max), ms: ${STEPS.map((s) => `${s} ${fmt(stepMedians[s]!.median, 2)} (${fmt(stepMedians[s]!.max, 1)})`).join(', ')}`);
  say(`client operations: ${records.start.length}, failed: ${failedOps}${failedOps ? ` ${JSON.stringify(records.errors)}` : ''}; late slots: ${records.late}; median job time ${fmt(median(jobs.map((j) => j.ms)) / 1000, 2)} s`);
  // Where the failures happened, relative to the nearest hold (a move must not fail any client query).
  const failures: { kind: string; moving: boolean; job: number; attempt: number; fromHoldMs: number; latencyMs: number }[] = [];
  for (let i = 0; i < records.start.length; i++) {
    if (records.failed[i] !== 1) continue;
    let best: AttemptRaw | null = null;
    for (const a of attempts) if (a.holdAt !== null && (best === null || Math.abs(records.start[i]! - a.holdAt) < Math.abs(records.start[i]! - best.holdAt!))) best = a;
    failures.push({ kind: KIND_NAMES[records.kind[i]!]!, moving: isMoving(i), job: best?.jobId ?? -1, attempt: best?.attempt ?? -1,
      fromHoldMs: round(best ? records.start[i]! - best.holdAt! : NaN), latencyMs: round(records.dur[i]!) });
  }
  for (const f of failures.slice(0, 10)) say(`  failed: ${f.kind} on ${f.moving ? 'the moving range' : 'another range'}, started ${fmt(f.fromHoldMs)} ms after job ${f.job} attempt ${f.attempt}'s hold, took ${fmt(f.latencyMs)} ms`);
  return {
    cutovers: o.cutovers,
    load: { ...o.load, movingKeys: o.movingKeys.length, otherKeys: o.otherKeys.length, ops: records.start.length, failed: failedOps, errors: records.errors, late: records.late, failures },
    serverErrors: cl.serverErrors().length,
    budgetMs: mover.settings.cutoverBudgetMs,
    attempts: rows.length,
    aborted: aborted.length,
    abortReasons: aborted.map((r) => r.reason),
    moverPauseMs: moverPause,
    clientPauseMs: clientPause,
    movingRangeOutsideCutoversMs: baseline,
    stepMs: stepMedians,
    p99ClientMs: round(quantile(ok.map((r) => r.clientMaxMs), 0.99)),
    jobs,
    perAttempt: rows.map((r) => ({ job: r.jobId, attempt: r.attempt, ok: r.ok, reason: r.reason, moverPauseMs: r.pauseMs, clientMaxMs: round(r.clientMaxMs), clientOps: r.clientOps, clientFailed: r.clientFailed, otherRangesMaxMs: round(r.otherMaxMs), steps: r.steps })),
  };
}
