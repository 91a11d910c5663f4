// One run of one job: the work of each state, the live cutover steps, error handling (retry, pause, fail).
import type pg from 'pg';
import type { ChunkCopier, CopyEnds } from './copier.js';
import { afterKey, baselineLatency, clearAboveCheckpoint, copyChunk, estimateRows, inRange, probe, readCheckpoints, Throttle, type Range } from './backfill.js';
import { anyFenced, BYPASS_SETTING, changelogLag, dropCapture, ensureMoverSchema, installCapture, MOVER_SCHEMA, setTriggerMode, type CaptureSpec } from './capture.js';
import { runCutover, type CutoverSteps } from './cutover.js';
import { isTransient, MoverError, WAITING_FOR_PROXIES, WAITING_FOR_SERVER } from './errors.js';
import type { Job, JobPatch, TableProgress } from './jobs.js';
import type { Mover, MoverSettings } from './mover.js';
import type { HeldRange } from './routing-control.js';
import { tableDdl, type MoveTable } from './shards.js';
import { KEY_ORDER_PLAN, quoteIdent, quoteTable } from './sql.js';
import { JobState, canTransition } from './states.js';
import { drainOnce } from './sync.js';
import { verifyRange } from './verify.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pause or cancel request arrived: unwind to the loop, which honours it. */
class Interrupted extends Error {}

/** The throttle's foreground baseline: p99 of the leader's statements on the source over this window before the copy. */
const FG_BASELINE_WINDOW_MS = 30_000;
/** Fewer statements than this make no baseline (a p99 of a handful is their max). */
const FG_MIN_BASELINE_SAMPLES = 50;
/** A chunk during which the leader ran fewer statements on the source says nothing about them. */
const FG_MIN_CHUNK_SAMPLES = 10;
/** 'auto' copies in the worker when the proxy ran statements on either shard this recently, ms. */
const FG_BUSY_WINDOW_MS = 2_000;
/** A paced chunk lasts about this long (s): short enough that the throttle hears of it soon. */
const PACED_CHUNK_SECONDS = 1;

/** Rows for the next chunk: the throttle's number, fewer when paced so a chunk takes about PACED_CHUNK_SECONDS. */
export function chunkRowsFor(chunkRows: number, bytesPerSec: number | undefined, copied: { rows: number; bytes: number }, minRows: number): number {
  if (bytesPerSec === undefined || copied.rows === 0) return chunkRows;
  const rowBytes = copied.bytes / copied.rows;
  return Math.max(minRows, Math.min(chunkRows, Math.round((bytesPerSec * PACED_CHUNK_SECONDS) / rowBytes)));
}

export class JobRun {
  /** The Mover's copy worker (copyInWorker) while this job's copy phase uses it. */
  private copier: ChunkCopier | null = null;
  private src: pg.Client | null = null;
  private dst: pg.Client | null = null;
  private tablesCache: MoveTable[] | null = null;
  private transientSince: number | null = null;
  readonly settings: MoverSettings;

  constructor(private readonly m: Mover, public job: Job) {
    const js = job.settings;
    this.settings = {
      ...m.settings,
      ...(js.graceMs !== undefined ? { graceMs: js.graceMs } : {}),
      ...(js.chunkRows !== undefined ? { chunkRows: js.chunkRows } : {}),
      ...(js.cutoverBudgetMs !== undefined ? { cutoverBudgetMs: js.cutoverBudgetMs } : {}),
    };
  }

  get id(): number {
    return this.job.id;
  }

  get range(): HeldRange & Range {
    return { jobId: this.job.id, keyspaceId: this.job.keyspaceId, lo: this.job.lo, hi: this.job.hi };
  }

  async tables(): Promise<MoveTable[]> {
    this.tablesCache ??= await this.m.keyspaceTables(this.job.keyspaceId, this.job.sourceShard);
    return this.tablesCache;
  }

  async spec(): Promise<CaptureSpec> {
    return { jobId: this.job.id, lo: this.job.lo, hi: this.job.hi, tables: await this.tables() };
  }

  async source(): Promise<pg.Client> {
    this.src ??= await this.m.shards.client(this.job.sourceShard);
    return this.src;
  }

  async target(): Promise<pg.Client> {
    this.dst ??= await this.m.shards.client(this.job.targetShard);
    return this.dst;
  }

  /** Ends this job's connections in the Mover's copy worker (the worker stays). */
  private async closeCopier(): Promise<void> {
    const c = this.copier;
    this.copier = null;
    await c?.release(this.id);
  }

  async close(): Promise<void> {
    await this.closeCopier();
    const cs = [this.src, this.dst];
    this.src = this.dst = null;
    await Promise.allSettled(cs.map((c) => c?.end()));
  }

  private async transition(to: JobState, detail: string, patch: JobPatch = {}, c?: pg.ClientBase): Promise<void> {
    this.job = await this.m.store.transition(this.id, this.job.state, to, detail, patch, c);
    this.m.info({ job: this.id, state: to, detail }, 'job transition');
  }

  private async persist(patch: JobPatch): Promise<void> {
    this.job = await this.m.store.patch(this.id, patch);
    if (this.job.requested) throw new Interrupted();
  }

  private step(name: string): Promise<void> {
    return this.m.step(this.id, name);
  }

  // ------------------------------------------------------------------ loop

  /** Until the job rests (done, rolled back, paused, failed), or, with requestsOnly, until no request is pending. */
  async loop(requestsOnly: boolean): Promise<Job> {
    for (;;) {
      this.job = await this.m.store.load(this.id);
      try {
        if (!(await this.pass(requestsOnly))) return this.job;
        this.transientSince = null;
      } catch (err) {
        if (err instanceof Interrupted) continue;
        if (!(await this.onError(err))) return await this.m.store.load(this.id);
      }
    }
  }

  private async pass(requestsOnly: boolean): Promise<boolean> {
    const j = this.job;
    if (j.requested === 'cancel') {
      if (canTransition(j.state, JobState.Cancelled)) {
        await this.transition(JobState.Cancelled, 'cancel requested: rolling back', { requested: null, pausedFrom: null });
        return true;
      }
      if (j.state !== JobState.Cancelled) await this.m.store.patch(this.id, { requested: null });
    } else if (j.requested === 'pause') {
      if (j.state === JobState.Cutover) {
        await new LiveCutover(this, this.m).abortCutover('pause requested');
        await this.transition(JobState.CatchingUp, 'cutover abandoned: pause requested');
        return true;
      }
      if (canTransition(j.state, JobState.Paused)) {
        await this.transition(JobState.Paused, 'paused by request', { requested: null, pausedFrom: j.state, reason: 'paused by request' });
        return false;
      }
      await this.m.store.patch(this.id, { requested: null });
      return true;
    }
    if (requestsOnly && j.state !== JobState.Cancelled) return false;
    switch (j.state) {
      case JobState.Planned:
        await this.step('state:planned');
        await this.transition(JobState.Preparing, 'preparing target and capture triggers');
        return true;
      case JobState.Preparing: await this.prepare(); return true;
      case JobState.Copying: await this.copy(); return true;
      case JobState.CatchingUp: await this.catchUp(); return true;
      case JobState.Cutover: await this.cutover(); return true;
      case JobState.Cleanup: await this.cleanup(); return true;
      case JobState.Cancelled: await this.rollback(); return true;
      default: return false;
    }
  }

  /** true: keep looping (retry); false: the job now rests (paused/failed) or must wait for the next run. */
  private async onError(err: unknown): Promise<boolean> {
    const msg = (err as Error)?.message ?? String(err);
    this.job = await this.m.store.load(this.id);
    const state = this.job.state;
    if (err instanceof MoverError && err.code === 'JOB_STATE_CHANGED') return true;
    await this.close();
    this.tablesCache = null;
    if (isTransient(err)) {
      if (this.transientSince === null) {
        this.transientSince = Date.now();
        await this.m.store.note(this.id, state, `${WAITING_FOR_SERVER}, retrying: ${msg}`).catch(() => {});
      }
      if (Date.now() - this.transientSince < this.settings.transientRetryMs) {
        await sleep(this.settings.retryDelayMs);
        return true;
      }
      return this.rest(JobState.Paused, `${WAITING_FOR_SERVER}: ${msg}`);
    }
    this.m.info({ job: this.id, state, err: msg }, 'job step failed');
    return this.rest(state === JobState.Cleanup ? JobState.Paused : JobState.Failed, msg);
  }

  /** Put the job to rest in `to` (paused or failed), lifting a half-done cutover first. */
  private async rest(to: JobState.Paused | JobState.Failed, reason: string): Promise<boolean> {
    try {
      if (this.job.state === JobState.Cutover) {
        await new LiveCutover(this, this.m).abortCutover(reason);
        await this.transition(JobState.CatchingUp, `cutover abandoned: ${reason}`);
      }
      const from = this.job.state;
      if (!canTransition(from, to)) {
        await this.m.store.note(this.id, from, `cannot go to ${to} from ${from}: ${reason}`);
        return false;
      }
      await this.transition(to, reason, to === JobState.Failed ? { error: reason, pausedFrom: from } : { reason, pausedFrom: from });
    } catch (e) {
      // The servers needed to lift the cutover are gone too: the job stays as it is, the next run retries.
      await this.m.store.note(this.id, this.job.state, `could not rest in ${to}: ${(e as Error).message}`).catch(() => {});
    }
    return false;
  }

  // ------------------------------------------------------------------ states

  private async prepare(): Promise<void> {
    await this.step('state:preparing');
    // The target may have filled up since the job was planned: check its room again before copying.
    const sizeBytes = await this.m.checkRoom({ id: this.job.partitionId, keyspaceId: this.job.keyspaceId, shardId: this.job.sourceShard }, this.job.targetShard, this.id);
    if (sizeBytes !== null) await this.persist({ progress: { sizeBytes } });
    const tables = await this.tables();
    const missing = await this.m.checkTargetSchema(tables, this.job.sourceShard, this.job.targetShard);
    const dst = await this.target();
    const srcPool = await this.m.shards.pool(this.job.sourceShard);
    for (const t of missing) {
      const ddl = await tableDdl(srcPool, t.name);
      await dst.query('BEGIN');
      try {
        for (const stmt of ddl) await dst.query(stmt);
        await dst.query('COMMIT');
      } catch (err) {
        await dst.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    await ensureMoverSchema(dst);
    await this.waitForStrayMarkers();
    const src = await this.source();
    await installCapture(src, await this.spec(), this.settings.lockTimeoutMs);
    const estimatedRows = await estimateRows(src, tables, this.range);
    await this.transition(JobState.Copying, `capture triggers on shard ${this.job.sourceShard}${missing.length ? `; created ${missing.map((t) => t.name).join(', ')} on shard ${this.job.targetShard}` : ''}`,
      { progress: { estimatedRows, copyStartedAt: new Date().toISOString() } });
  }

  /**
   * Before the first row lands on the target, every live proxy must route by a version that lists
   * this job's range as strays (starting the job was that routing change), or its fan-outs would
   * count the copied rows twice. A proxy that does not ack in time (dead, not yet declared so) is
   * a transient wait: the job retries and pauses after transientRetryMs like for a server.
   */
  private async waitForStrayMarkers(): Promise<void> {
    const version = await this.m.catalog.routingVersion();
    try {
      await this.m.routing.installVersion(version, this.settings.installTimeoutMs);
    } catch (err) {
      throw new MoverError('NOT_ACKNOWLEDGED', `${WAITING_FOR_PROXIES}: ${(err as Error).message}`, { sqlstate: '57P03', cause: err });
    }
    await this.step('prepare:strays-acked');
  }

  private async copy(): Promise<void> {
    await this.step('state:copying');
    const tables = await this.tables();
    const src = await this.source();
    const dst = await this.target();
    const srcPool = await this.m.shards.pool(this.job.sourceShard);
    const prior = this.job.progress.throttle;
    const baseline = prior?.baselineMs ?? await baselineLatency(srcPool, tables[0]!);
    const s = this.settings;
    const throttle = new Throttle({ chunkRows: s.chunkRows, minChunkRows: s.minChunkRows, maxChunkRows: s.maxChunkRows, latencyFactor: s.latencyFactor, latencyFloorMs: s.latencyFloorMs, maxDelayMs: s.maxDelayMs }, baseline, prior);
    // The target's copy_state is the truth (committed with each chunk); the catalog shows a copy of it.
    const checkpoints = await readCheckpoints(dst, this.id);
    const progress: Record<string, TableProgress> = {};
    for (const t of tables) progress[t.name] = checkpoints.get(t.name) ?? { lastKey: null, done: false, rows: 0, bytes: 0 };
    const totals = () => Object.values(progress).reduce((a, p) => ({ rows: a.rows + p.rows, bytes: a.bytes + p.bytes }), { rows: 0, bytes: 0 });
    // The foreground p99 before the copy: the leader's statements on the source in the last 30 s.
    const fg = this.m.foreground;
    if (fg && throttle.state.fgBaselineMs === undefined) {
      const pre = fg.recentQuantile(this.job.sourceShard, 0.99, performance.now() - FG_BASELINE_WINDOW_MS);
      if (pre && pre.n >= FG_MIN_BASELINE_SAMPLES) throttle.setForegroundBaseline(pre.ms);
    }
    let ends: CopyEnds | null = null;
    for (const t of tables) {
      let cp = progress[t.name]!;
      if (cp.done) continue;
      await clearAboveCheckpoint(dst, t, this.range, cp.lastKey);
      while (!cp.done) {
        const chunkStart = performance.now();
        const probing = probe(srcPool, t, cp.lastKey).catch(() => NaN);
        const pace = throttle.state.bytesPerSec;
        const rows = chunkRowsFor(throttle.state.chunkRows, pace, cp, s.minChunkRows);
        const before = cp;
        if (this.copyInWorker(throttle, chunkStart)) {
          ends ??= { srcUrl: await this.m.shards.url(this.job.sourceShard), dstUrl: await this.m.shards.url(this.job.targetShard) };
          this.copier = this.m.copier;
          cp = await this.copier.copyChunk(this.id, ends, t, this.range, cp, rows, pace);
        } else {
          cp = await copyChunk(src, dst, this.id, t, this.range, cp, rows, pace);
        }
        const chunk = { bytes: cp.bytes - before.bytes, rows: cp.rows - before.rows, ms: performance.now() - chunkStart };
        const ms = await probing;
        // A chunk too short to have seen enough statements is judged with the second before it too.
        let during = fg?.recentQuantile(this.job.sourceShard, 0.99, chunkStart);
        if (fg && (!during || during.n < FG_MIN_CHUNK_SAMPLES)) during = fg.recentQuantile(this.job.sourceShard, 0.99, chunkStart - 1000);
        if (Number.isFinite(ms)) throttle.observe(ms, during && during.n >= FG_MIN_CHUNK_SAMPLES ? during.ms : undefined, chunk);
        const idle = await probe(srcPool, t, cp.lastKey).catch(() => NaN);
        if (Number.isFinite(idle)) throttle.observeIdle(idle);
        progress[t.name] = cp;
        const tot = totals();
        await this.persist({ progress: { tables: progress, rowsCopied: tot.rows, bytesCopied: tot.bytes, throttle: throttle.state } });
        await this.step('chunk');
        if (throttle.state.delayMs > 0) await sleep(throttle.state.delayMs);
      }
    }
    await this.closeCopier();
    const tot = totals();
    await this.transition(JobState.CatchingUp, `copied ${tot.rows} rows (${tot.bytes} bytes)`, { progress: { copyFinishedAt: new Date().toISOString(), rowsCopied: tot.rows, bytesCopied: tot.bytes, tables: progress } });
  }

  /**
   * Where the next chunk is copied. Every row of a chunk passes through JS; in this thread that is
   * the leader proxy's event loop, and its clients wait behind it. With copyInWorker 'auto' the
   * chunk goes to the worker thread while the proxy has statements on the source or the target
   * (or had them before the copy), and stays here when nobody would wait: here it is faster
   * (bench/mover, no load: 0.57x a COPY pipe here, 0.43x in the worker).
   */
  private copyInWorker(throttle: Throttle, now: number): boolean {
    const mode = this.settings.copyInWorker;
    if (mode !== 'auto') return mode;
    if (throttle.state.fgBaselineMs !== undefined) return true;
    const fg = this.m.foreground;
    if (!fg) return false;
    const seen = (shard: number) => (fg.recentQuantile(shard, 0.5, now - FG_BUSY_WINDOW_MS)?.n ?? 0) >= FG_MIN_CHUNK_SAMPLES;
    return seen(this.job.sourceShard) || seen(this.job.targetShard);
  }

  /**
   * Drain passes until the changelog is under the lag bound, or, with `toEmpty` (behind the fence),
   * until it is empty. Behind the fence no entry can appear any more, and every capturing writer
   * committed before the fence did (its LOCK waited for them), so a pass that read less than a
   * batch emptied it: no confirming pass inside the cutover's pause.
   */
  async drain(toEmpty: boolean, persist: boolean): Promise<number> {
    const tables = await this.tables();
    const src = await this.source();
    const dst = await this.target();
    let entries = 0;
    let keys = 0;
    for (;;) {
      const r = await drainOnce(src, dst, this.id, tables, this.settings.drainBatch);
      entries += r.entries;
      keys += r.keys;
      if (toEmpty) {
        if (r.entries < this.settings.drainBatch) return entries;
        continue;
      }
      const lag = await changelogLag(src, this.id);
      if (persist) {
        const p = this.job.progress;
        await this.persist({ progress: { lag, drainedEntries: (p.drainedEntries ?? 0) + r.entries, drainedKeys: (p.drainedKeys ?? 0) + r.keys } });
      }
      if (r.entries < this.settings.drainBatch && lag <= this.settings.lagBound) return entries;
    }
  }

  private async catchUp(): Promise<void> {
    await this.step('state:catching_up');
    const attempts = this.job.progress.cutoverAttempts ?? 0;
    if (attempts >= this.settings.cutoverAttempts) {
      const reason = `cutover could not finish within ${this.settings.cutoverBudgetMs} ms in ${attempts} attempts; RESUME JOB ${this.id} to try again`;
      await this.transition(JobState.Paused, reason, { reason, pausedFrom: JobState.CatchingUp });
      return;
    }
    await this.drain(false, true);
    if (!this.job.verification?.ok) {
      const tables = await this.tables();
      let result = null;
      for (let round = 0; round < 3; round++) {
        result = await verifyRange(await this.source(), await this.target(), this.id, tables, this.range, { chunkRows: this.settings.verifyChunkRows, rounds: 3, repair: true });
        const repaired = result.tables.reduce((a, t) => a + t.repairedKeys, 0);
        const rows = result.tables.reduce((a, t) => a + t.rows, 0);
        await this.m.store.note(this.id, JobState.CatchingUp, `verification ${result.ok ? 'passed' : 'FAILED'}: ${rows} rows in ${result.tables.reduce((a, t) => a + t.chunks, 0)} chunks, ${repaired} keys repaired`);
        await this.persist({ verification: result });
        if (result.ok) break;
        await this.drain(false, true);
      }
      if (!result?.ok) throw new MoverError('VERIFY_FAILED', `verification of job ${this.id} found keys that differ after repair`, { sqlstate: 'XX001' });
      await this.drain(false, true);
    }
    await this.transition(JobState.Cutover, `lag ${this.job.progress.lag ?? 0} ≤ ${this.settings.lagBound}, verified; cutting over`);
  }

  private async cutover(): Promise<void> {
    await this.step('state:cutover');
    // Outside the pause budget: wait out a proxy that missed heartbeats (dead or back) instead of
    // holding traffic and aborting for want of its ack.
    await this.m.routing.beforeCutover?.();
    const attempts = (this.job.progress.cutoverAttempts ?? 0) + 1;
    this.job = await this.m.store.patch(this.id, { progress: { cutoverAttempts: attempts } });
    const decision = await runCutover(new LiveCutover(this, this.m), { budgetMs: this.settings.cutoverBudgetMs, installTimeoutMs: this.settings.installTimeoutMs });
    const record = this.job.cutover ?? { attempts: [] };
    record.attempts.push({ at: new Date().toISOString(), ok: decision.go, pauseMs: Math.round(decision.pauseMs * 10) / 10, ...(decision.go ? {} : { reason: decision.reason }), steps: decision.steps.map((s) => ({ step: s.step, ms: Math.round(s.ms * 10) / 10 })) });
    if (decision.go) {
      record.pauseMs = Math.round(decision.pauseMs * 10) / 10;
      this.job = await this.m.store.patch(this.id, { cutover: record, progress: { routingVersion: decision.version } });
      await this.m.store.note(this.id, this.job.state, `cutover paused the range for ${record.pauseMs} ms; routing version ${decision.version}`);
    } else {
      this.job = await this.m.store.patch(this.id, { cutover: record });
      await this.transition(JobState.CatchingUp, `cutover aborted (attempt ${attempts}): ${decision.reason}`);
    }
  }

  private async cleanup(): Promise<void> {
    await this.step('state:cleanup');
    const switchedAt = Date.parse(this.job.progress.switchedAt ?? new Date(0).toISOString());
    for (;;) {
      const left = switchedAt + this.settings.graceMs - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(250, left));
      await this.persist({});
    }
    const src = await this.source();
    let cleaned = this.job.progress.cleanedRows ?? 0;
    for (const t of await this.tables()) {
      let after: string | null = null;
      for (;;) {
        const d = await deleteRangeChunk(src, t, this.range, this.settings.cleanupChunkRows, true, after);
        if (d.n === 0) {
          if (after === null) break;
          after = null; // one last pass from the start (the range is fenced: it finds nothing)
          continue;
        }
        after = d.last;
        cleaned += d.n;
        await this.persist({ progress: { cleanedRows: cleaned } });
        await this.step('cleanup-chunk');
      }
    }
    await this.step('cleanup:rows-deleted');
    await dropCapture(src, await this.spec(), this.settings.lockTimeoutMs);
    const dst = await this.target();
    await dst.query(`DELETE FROM ${MOVER_SCHEMA}.copy_state WHERE job_id = $1`, [this.id]).catch(() => {});
    // A routing change: proxies filter the source's copy of the range out of fan-outs until they
    // learn (by the version bump) that it is gone.
    await this.m.catalog.change(`job ${this.id} done: shard ${this.job.sourceShard} no longer holds partition ${this.job.partitionId}'s rows`, async (c) => {
      await this.transition(JobState.Done, `deleted ${cleaned} rows of the range from shard ${this.job.sourceShard}; triggers and fence removed`, { progress: { cleanedRows: cleaned } }, c);
      return true;
    });
  }

  private async rollback(): Promise<void> {
    await this.step('state:cancelled');
    await this.m.routing.release(this.range);
    const src = await this.source();
    await dropCapture(src, await this.spec(), this.settings.lockTimeoutMs);
    const dst = await this.target();
    let deleted = 0;
    for (const t of await this.tables()) {
      const exists = await dst.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [quoteTable(t.name)]);
      if (!exists.rows[0]?.ok) continue;
      let after: string | null = null;
      for (;;) {
        const d = await deleteRangeChunk(dst, t, this.range, this.settings.cleanupChunkRows, false, after);
        deleted += d.n;
        if (d.n === 0) {
          if (after === null) break;
          after = null; // a last pass from the start, in case a row appeared behind the cursor
          continue;
        }
        after = d.last;
      }
    }
    await dst.query(`DELETE FROM ${MOVER_SCHEMA}.copy_state WHERE job_id = $1`, [this.id]).catch(() => {});
    await this.m.catalog.change(`job ${this.id} rolled back: partition ${this.job.partitionId} stays on shard ${this.job.sourceShard}`, async (c) => {
      await c.query("UPDATE pgtide.partitions SET state = 'active' WHERE id = $1 AND shard_id = $2", [this.job.partitionId, this.job.sourceShard]);
      this.job = await this.m.store.transition(this.id, JobState.Cancelled, JobState.RolledBack, `rolled back: triggers dropped, ${deleted} rows deleted from shard ${this.job.targetShard}`, {}, c);
      return true;
    });
  }
}

/**
 * Delete up to `n` keys' rows of the range in key order, after key `after` (keyset: each chunk
 * reads the key index from where the last one stopped; from the start every time, chunk k walked
 * past the k-1 chunks already deleted and, on a shard with other partitions, past their rows
 * too). `bypass` silences the job's fence (source side). Returns the rows deleted and the last key.
 */
async function deleteRangeChunk(c: pg.ClientBase, t: MoveTable, r: Range, n: number, bypass: boolean, after: string | null): Promise<{ n: number; last: string | null }> {
  const k = quoteIdent(t.keyColumn);
  const q = quoteTable(t.name);
  const where = `${inRange(t, r)}${afterKey(t, after)}`;
  await c.query(`BEGIN; ${KEY_ORDER_PLAN}${bypass ? `; SET LOCAL ${BYPASS_SETTING} = 'on'` : ''}`);
  try {
    const res = await c.query<{ n: string; last: string | null }>(`WITH d AS (DELETE FROM ${q} WHERE ${inRange(t, r)} AND ${k} = ANY(ARRAY(SELECT ${k} FROM ${q} WHERE ${where} ORDER BY ${k} LIMIT ${n})) RETURNING ${k})
      SELECT count(*) AS n, max(${k})::text AS last FROM d`);
    await c.query('COMMIT');
    return { n: Number(res.rows[0]!.n), last: res.rows[0]!.last };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** The real cutover steps of one job run. */
class LiveCutover implements CutoverSteps {
  constructor(private readonly run: JobRun, private readonly m: Mover) {}

  private get job(): Job {
    return this.run.job;
  }

  async holdTraffic(): Promise<void> {
    // Every proxy holds the range at most this long on its own (the mover releases it sooner).
    const s = this.run.settings;
    await this.m.routing.holdRange({ ...this.run.range, holdMs: s.cutoverBudgetMs + s.installTimeoutMs + 2000 });
    await this.m.step(this.job.id, 'cutover:holdTraffic');
  }

  async waitForInFlight(timeoutMs: number): Promise<void> {
    await this.m.routing.waitInFlight(this.run.range, timeoutMs);
  }

  async fenceSource(timeoutMs: number): Promise<void> {
    await setTriggerMode(await this.run.source(), await this.run.spec(), 'fence', timeoutMs, performance.now() + timeoutMs);
    await this.m.step(this.job.id, 'cutover:fenceSource');
  }

  async drainFinalChanges(): Promise<void> {
    await this.run.drain(true, false);
    await this.m.step(this.job.id, 'cutover:drainFinalChanges');
  }

  async switchRouting(): Promise<number> {
    const j = this.job;
    const version = await this.m.catalog.change(`move partition ${j.partitionId} to shard ${j.targetShard} (job ${j.id})`, async (c) => {
      const r = await c.query("UPDATE pgtide.partitions SET shard_id = $3, state = 'active' WHERE id = $1 AND shard_id = $2", [j.partitionId, j.sourceShard, j.targetShard]);
      if (r.rowCount !== 1) throw new MoverError('PARTITION_CHANGED', `partition ${j.partitionId} is no longer on shard ${j.sourceShard}`, { sqlstate: '55000' });
      this.run.job = await this.m.store.transition(j.id, JobState.Cutover, JobState.Cleanup, `routing switched: partition ${j.partitionId} now on shard ${j.targetShard}`,
        { progress: { switchedAt: new Date().toISOString() } }, c);
      return true;
    });
    await this.m.step(j.id, 'cutover:switchRouting');
    return version!;
  }

  async installRouting(version: number, timeoutMs: number): Promise<void> {
    await this.m.routing.installVersion(version, timeoutMs);
  }

  async releaseTraffic(): Promise<void> {
    await this.m.routing.release(this.run.range);
  }

  async abortCutover(_reason: string): Promise<void> {
    // Capture again (so nothing written from now on escapes), then let held queries go to the source.
    // Held queries are released even when lifting the fence fails (a long transaction on the table
    // outlasts lock_timeout; the job retries it): still fenced, they hit the fence and retry rather
    // than wait without a bound.
    try {
      // Only a fence that is up needs lifting (anyFenced reads the functions, takes no lock). Not
      // "fenceSource ran": its usual failure is lock_timeout on the first table, which rolled back
      // and fenced nothing, and that lock is held by a transaction that waits for this very hold
      // (it wrote another range of the table on the source, its next statement is on the held
      // range). LOCK TABLE for a lift then waits for the same transaction: lock_timeout again,
      // thrown out of the cutover as a transient error, the attempt never counted, and the job
      // retried the cutover until transientRetryMs paused it ("waiting for a server").
      // Likewise no lift when an ack or in-flight wait timed out: LOCK TABLE would only queue
      // every write to the table behind the transaction that made the attempt fail.
      const src = await this.run.source();
      const spec = await this.run.spec();
      if (await anyFenced(src, spec)) await setTriggerMode(src, spec, 'capture', Math.max(this.run.settings.lockTimeoutMs, 1000));
    } finally {
      await this.m.routing.release(this.run.range);
    }
  }

  async routingSwitched(): Promise<number | null> {
    const j = await this.m.store.load(this.job.id);
    if (j.state !== JobState.Cleanup) return null;
    this.run.job = j;
    return this.m.catalog.routingVersion();
  }
}


