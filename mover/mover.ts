// The Mover: admin-facing API (start/pause/resume/cancel/list/detail/split/merge) and the job runner that drives each state.
//
// runJob(id) re-derives everything from persisted state on every pass of its loop: it reloads the
// job row, does the work of the state it is in, and persists the result with a compare-and-set
// transition. Shard-side progress lives where it is atomic with the data: the copy checkpoint in
// the target's transaction, the changelog in the source's. A runner killed at any point leaves a
// job that the next runJob (by the next leader) continues from its last state.
import { ChunkCopier } from './copier.js';
import type { Catalog } from '../config/catalog.js';
import type { KeyType } from '../config/types.js';
import { changelogLag } from './capture.js';
import { DryRunCutover, runCutover } from './cutover.js';
import { isWaitingForServer, MoverError, unknownShard } from './errors.js';
import { JobStore, type Job, type JobEvent, type JobProgress, type JobSettings, type VerificationResult } from './jobs.js';
import { lockPartition } from './partitions.js';
import { NoProxyRoutingControl, type RoutingControl } from './routing-control.js';
import { JobRun } from './run.js';
import { hasUniqueIndexOn, schemaDifferences, ShardConnections, tableColumns, type MoveTable } from './shards.js';
import { capacityRefusal, partitionSizes, shardRoom, type SizedTable } from './sizes.js';
import { JobState, isActive, pastPointOfNoReturn } from './states.js';

/** Knobs, with units in the names' comments. Per-job overrides (JobSettings) win over these. */
export interface MoverSettings {
  /** Initial rows per backfill chunk (the throttle adapts it). */
  chunkRows: number;
  minChunkRows: number;
  maxChunkRows: number;
  /** Foreground probe latency bound = factor × pre-job baseline. */
  latencyFactor: number;
  /** …but never tighter than baseline + this many ms (sub-ms probes are noise). */
  latencyFloorMs: number;
  /** Longest pause between chunks when throttled, ms. */
  maxDelayMs: number;
  /** Changelog entries per drain pass. */
  drainBatch: number;
  /** Cutover starts when the changelog holds at most this many entries. */
  lagBound: number;
  /** Verification chunk, rows. */
  verifyChunkRows: number;
  /** Pause budget of one cutover (hold → routing commit), ms. */
  cutoverBudgetMs: number;
  /** Cutover attempts before the job pauses with a reason. */
  cutoverAttempts: number;
  /** How long proxies get to ack a new routing version, ms. */
  installTimeoutMs: number;
  /** Wait between the switch and deleting the source's rows (longer than a proxy lease), ms. */
  graceMs: number;
  cleanupChunkRows: number;
  /** lock_timeout for trigger installation and removal, ms. */
  lockTimeoutMs: number;
  /** Wait between retries after a transient error (server down), ms. */
  retryDelayMs: number;
  /** After this long failing transiently the job pauses with the reason, ms. */
  transientRetryMs: number;
  /**
   * Where backfill chunks are copied: in a worker thread (off the leader proxy's event loop), in
   * this thread, or 'auto' (default): in the worker while the proxy has statements on the source
   * or the target, here otherwise. On the 2-core bench box the worker copies 25 % slower (0.43x a
   * plain COPY pipe against 0.57x; issue 6 asks >= 0.5x) but, paced, keeps the clients' p99 during
   * a copy at 1.5-1.7x its level before, where the same pace in this thread gave 1.8-2.6x.
   */
  copyInWorker: boolean | 'auto';
}

export const DEFAULT_SETTINGS: MoverSettings = {
  chunkRows: 5000,
  minChunkRows: 100,
  maxChunkRows: 250000,
  latencyFactor: 2,
  latencyFloorMs: 2,
  maxDelayMs: 1000,
  drainBatch: 2000,
  lagBound: 200,
  verifyChunkRows: 5000,
  cutoverBudgetMs: 100,
  cutoverAttempts: 5,
  installTimeoutMs: 5000,
  graceMs: 10000,
  cleanupChunkRows: 5000,
  lockTimeoutMs: 2000,
  retryDelayMs: 500,
  transientRetryMs: 60000,
  copyInWorker: 'auto',
};

/** Test and operations hooks: called at named points of a run (e.g. to SIGKILL the runner there). */
export interface MoverHooks {
  onStep?(jobId: number, step: string): void | Promise<void>;
}

export interface MoverLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The leader proxy's own statement latencies per shard (proxy/http/latency-histogram.ts). */
export interface ForegroundLatency {
  /** q-quantile (ms) and count of the shard's statements that ended since `sinceMs` (performance.now()). */
  recentQuantile(shardId: number, q: number, sinceMs: number): { ms: number; n: number } | null;
}

export interface MoverOptions {
  catalog: Catalog;
  routing?: RoutingControl;
  /** The proxy's foreground latencies, so the backfill throttle watches the number it must bound. */
  foreground?: ForegroundLatency;
  settings?: Partial<MoverSettings>;
  hooks?: MoverHooks;
  log?: MoverLog;
}

/** One row of SHOW JOBS. */
export interface JobSummary {
  id: number;
  kind: 'move';
  partitionId: number;
  sourceShard: number;
  targetShard: number;
  state: JobState;
  requested: 'pause' | 'cancel' | null;
  rowsCopied: number;
  reason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** SHOW JOB n. */
export interface JobDetail extends JobSummary {
  lo: string;
  hi: string;
  bytesCopied: number;
  estimatedRows: number | null;
  /** Changelog entries not yet on the target (live from the source when reachable). */
  lag: number | null;
  etaSeconds: number | null;
  verification: VerificationResult | null;
  /** The last VERIFY PARTITION run on this job's source and target. */
  onDemandVerification: JobProgress['onDemandVerification'] | null;
  /** Pause clients saw during the successful cutover, ms. */
  cutoverPauseMs: number | null;
  cutoverAttempts: number;
  throttle: Job['progress']['throttle'] | null;
  error: string | null;
  events: JobEvent[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Mover {
  readonly store: JobStore;
  readonly shards: ShardConnections;
  readonly routing: RoutingControl;
  readonly settings: MoverSettings;
  readonly foreground: ForegroundLatency | undefined;
  /** Copies backfill chunks in a worker thread (started on first use, kept between jobs). */
  readonly copier: ChunkCopier;
  private readonly hooks: MoverHooks;
  private readonly log: MoverLog | undefined;

  constructor(private readonly opts: MoverOptions) {
    this.store = new JobStore(opts.catalog);
    this.shards = new ShardConnections(opts.catalog);
    this.routing = opts.routing ?? new NoProxyRoutingControl();
    this.settings = { ...DEFAULT_SETTINGS, ...opts.settings };
    this.foreground = opts.foreground;
    this.copier = new ChunkCopier({ appName: this.shards.appName });
    this.hooks = opts.hooks ?? {};
    this.log = opts.log;
  }

  get catalog(): Catalog {
    return this.opts.catalog;
  }

  async close(): Promise<void> {
    await this.copier.close();
    await this.shards.close();
  }

  // ---------------------------------------------------------------- admin API

  /**
   * Plan a move of partition `partitionId` to `targetShard` (MOVE PARTITION p TO SHARD n). Checks
   * everything that can be checked up front and changes nothing when one fails; the job is
   * `planned` and runs when runJob (the leader) picks it up.
   */
  async startMove(partitionId: number, targetShard: number, settings: JobSettings = {}): Promise<Job> {
    const part = await this.partition(partitionId);
    const shard = await this.catalog.pool.query<{ id: number; state: string }>('SELECT id, state FROM pgtide.shards WHERE id = $1', [targetShard]);
    if (!shard.rows[0]) throw unknownShard(targetShard);
    if (shard.rows[0].state !== 'active') throw new MoverError('SHARD_NOT_ACTIVE', `shard ${targetShard} is ${shard.rows[0].state}, not active`, { sqlstate: '55000' });
    if (part.shardId === targetShard) throw new MoverError('ALREADY_THERE', `partition ${partitionId} is already on shard ${targetShard}`, { sqlstate: '22023' });
    const busy = await this.store.activeJobFor(partitionId);
    if (busy !== null) throw new MoverError('PARTITION_BUSY', `partition ${partitionId} is already in job ${busy}`, { sqlstate: '55006' });
    await this.shards.ping(part.shardId);
    await this.shards.ping(targetShard);
    const tables = await this.keyspaceTables(part.keyspaceId, part.shardId);
    await this.checkTargetSchema(tables, part.shardId, targetShard);
    const sizeBytes = await this.checkRoom(part, targetShard);
    await this.step(0, 'start:room-checked'); // no job id yet
    let id = 0;
    await this.catalog.change(`move partition ${partitionId} to shard ${targetShard}: planned`, async (c) => {
      // Again under the routing lock, with the size measured above: two moves to a capped shard
      // started at once both passed the check above before either had reserved its size.
      if (sizeBytes !== null) {
        const refusal = capacityRefusal(await shardRoom(c, () => this.shards.pool(targetShard), targetShard), part.id, sizeBytes);
        if (refusal) throw refusal;
      }
      const p = await lockPartition(c, partitionId);
      if (p.shardId === targetShard) throw new MoverError('ALREADY_THERE', `partition ${partitionId} is already on shard ${targetShard}`, { sqlstate: '22023' });
      id = await this.store.insert(c, { partitionId, keyspaceId: p.keyspaceId, lo: p.lo, hi: p.hi, sourceShard: p.shardId, targetShard, settings },
        `move partition ${partitionId} [${p.lo}, ${p.hi}) from shard ${p.shardId} to shard ${targetShard}; tables ${tables.map((t) => t.name).join(', ')}`);
      await c.query("UPDATE pgtide.partitions SET state = 'moving' WHERE id = $1", [partitionId]);
      // The size reserves room on a capped target, so the next move's check counts this one.
      if (sizeBytes !== null) await c.query("UPDATE pgtide.jobs SET progress = progress || jsonb_build_object('sizeBytes', $2::float8) WHERE id = $1", [id, sizeBytes]);
      return true;
    });
    return this.store.load(id);
  }

  /**
   * SPLIT PARTITION p [AT h] [MOVE TO SHARD n]: metadata only (the catalog's split, which refuses a
   * partition in a job with 55006); with `moveTo`, the upper half then gets a move job.
   */
  async splitPartition(partitionId: number, atHash?: bigint, moveTo?: number): Promise<{ version: number; left: number; right: number; at: bigint; job?: Job }> {
    const r = await this.catalog.splitPartition(partitionId, atHash);
    if (moveTo === undefined) return r;
    const right = await this.partition(r.right);
    if (right.shardId === moveTo) return r;
    return { ...r, job: await this.startMove(r.right, moveTo) };
  }

  /** MERGE PARTITIONS p, q: adjacent, same shard, metadata only (the catalog's merge). */
  async mergePartitions(p: number, q: number): Promise<{ version: number; kept: number; removed: number }> {
    return this.catalog.mergePartitions(p, q);
  }

  /** PAUSE JOB n: the runner stops at its next safe point (between chunks, passes, or steps). */
  async pause(id: number): Promise<Job> {
    const job = await this.store.load(id);
    if (job.state === JobState.Paused) return job;
    if (!isActive(job.state) || job.state === JobState.Cancelled || job.state === JobState.Failed) {
      throw new MoverError('JOB_NOT_PAUSABLE', `job ${id} is ${job.state}`, { sqlstate: '55000' });
    }
    await this.store.patch(id, { requested: 'pause' });
    return this.settleRequests(id);
  }

  /** RESUME JOB n: back to the state it paused (or failed) in; the leader's runner continues it. */
  async resume(id: number): Promise<Job> {
    const job = await this.store.load(id);
    if (job.state !== JobState.Paused && job.state !== JobState.Failed) {
      if (job.requested === 'pause') return this.store.patch(id, { requested: null });
      throw new MoverError('JOB_NOT_PAUSED', `job ${id} is ${job.state}, not paused`, { sqlstate: '55000' });
    }
    const to = job.pausedFrom ?? JobState.Planned;
    return this.store.transition(id, job.state, to, `resumed (was ${job.state}${job.reason ? `: ${job.reason}` : ''})`,
      { requested: null, pausedFrom: null, reason: null, error: null, progress: { cutoverAttempts: 0 } });
  }

  /**
   * CANCEL JOB n: roll back (the source keeps owning the range, the target's copy of it is
   * deleted, triggers dropped). Refused once the routing names the target.
   */
  async cancel(id: number): Promise<Job> {
    const job = await this.store.load(id);
    if (job.state === JobState.RolledBack || job.state === JobState.Cancelled) return job.state === JobState.Cancelled ? this.settleRequests(id) : job;
    if (pastPointOfNoReturn(job.state)) {
      throw new MoverError('PAST_POINT_OF_NO_RETURN', `job ${id} is ${job.state}: the target already owns the range`, {
        sqlstate: '55000', hint: `move it back with MOVE PARTITION ${job.partitionId} TO SHARD ${job.sourceShard}`,
      });
    }
    await this.store.patch(id, { requested: 'cancel' });
    return this.settleRequests(id);
  }

  async listJobs(): Promise<JobSummary[]> {
    return (await this.store.list()).map(summary);
  }

  async jobDetail(id: number): Promise<JobDetail> {
    const job = await this.store.load(id);
    const p = job.progress;
    let lag: number | null = p.lag ?? null;
    if ([JobState.Copying, JobState.CatchingUp, JobState.Cutover, JobState.Paused].includes(job.state)) {
      try {
        lag = await changelogLag(await this.shards.pool(job.sourceShard), id);
      } catch {
        // source unreachable: show the last persisted lag
      }
    }
    let eta: number | null = null;
    if (job.state === JobState.Copying && p.copyStartedAt && p.estimatedRows) {
      const secs = (Date.now() - Date.parse(p.copyStartedAt)) / 1000;
      const rate = (p.rowsCopied ?? 0) / Math.max(secs, 0.001);
      eta = rate > 0 ? Math.max(0, (p.estimatedRows - (p.rowsCopied ?? 0)) / rate) : null;
    } else if (job.state === JobState.Done || job.state === JobState.RolledBack) {
      eta = 0;
    }
    return {
      ...summary(job),
      lo: job.lo.toString(),
      hi: job.hi.toString(),
      bytesCopied: p.bytesCopied ?? 0,
      estimatedRows: p.estimatedRows ?? null,
      lag,
      etaSeconds: eta,
      verification: job.verification,
      onDemandVerification: p.onDemandVerification ?? null,
      cutoverPauseMs: job.cutover?.pauseMs ?? null,
      cutoverAttempts: job.cutover?.attempts.length ?? 0,
      throttle: p.throttle ?? null,
      error: job.error,
      events: await this.store.events(id),
    };
  }

  /** The cutover's steps for this job, listed and not run. */
  async dryRunCutover(id: number): Promise<string[]> {
    const job = await this.store.load(id);
    const dry = new DryRunCutover();
    await runCutover(dry, { budgetMs: job.settings.cutoverBudgetMs ?? this.settings.cutoverBudgetMs, installTimeoutMs: this.settings.installTimeoutMs });
    return dry.log.map((l) => `job ${job.id}: ${l}`);
  }

  /**
   * Run every job that is neither paused, failed nor finished (the leader's loop calls this). A
   * job the runner paused because a server stayed unreachable (not one paused by request) is
   * resumed first once both its shards answer again.
   */
  async runPending(): Promise<Job[]> {
    const out: Job[] = [];
    for (const j of await this.store.list()) {
      if (j.state === JobState.Paused && isWaitingForServer(j.reason) && await this.reachable(j.sourceShard) && await this.reachable(j.targetShard)) {
        await this.resume(j.id);
        out.push(await this.runJob(j.id));
        continue;
      }
      if (isActive(j.state) && j.state !== JobState.Paused && j.state !== JobState.Failed) out.push(await this.runJob(j.id));
    }
    return out;
  }

  /** Whether the shard answers a query now (a fresh connection, short timeout). */
  private reachable(shardId: number): Promise<boolean> {
    return this.shards.ping(shardId, 2000).then(() => true, () => false);
  }

  // ---------------------------------------------------------------- runner

  /**
   * Drive job `id` until it is done, rolled back, paused or failed (or another process holds its
   * run lock: then the row as it is). Safe to call again after any crash.
   */
  async runJob(id: number, opts: { lockWaitMs?: number } = {}): Promise<Job> {
    return this.withLock(id, opts.lockWaitMs ?? 15000, (run) => run.loop(false));
  }

  /** Honour a pause/cancel request now if no runner holds the job; otherwise the runner will. */
  private async settleRequests(id: number): Promise<Job> {
    return this.withLock(id, 0, (run) => run.loop(true));
  }

  private async withLock(id: number, waitMs: number, fn: (run: JobRun) => Promise<Job>): Promise<Job> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lock = await this.store.tryLock(id);
      if (lock) {
        const run = new JobRun(this, await this.store.load(id));
        try {
          return await fn(run);
        } finally {
          await run.close();
          await lock.release();
        }
      }
      // A killed runner's session lingers until the server notices its socket is gone.
      if (Date.now() >= deadline) return this.store.load(id);
      await sleep(200);
    }
  }

  async step(jobId: number, name: string): Promise<void> {
    await this.hooks.onStep?.(jobId, name);
  }

  info(obj: object, msg: string): void {
    this.log?.info(obj, msg);
  }

  async partition(id: number) {
    if (!Number.isSafeInteger(id)) throw new MoverError('UNKNOWN_PARTITION', `partition ${id} does not exist`, { sqlstate: '42704' });
    const { rows } = await this.catalog.pool.query<{ id: number; keyspace_id: number; lo: string; hi: string; shard_id: number }>(
      'SELECT id, keyspace_id, lo::text AS lo, hi::text AS hi, shard_id FROM pgtide.partitions WHERE id = $1', [id]);
    if (!rows[0]) throw new MoverError('UNKNOWN_PARTITION', `partition ${id} does not exist`, { sqlstate: '42704' });
    const r = rows[0];
    return { id: r.id, keyspaceId: r.keyspace_id, lo: BigInt(r.lo), hi: BigInt(r.hi), shardId: r.shard_id };
  }

  /** The key space's sharded tables with their columns as the source has them. */
  async keyspaceTables(keyspaceId: number, sourceShard: number): Promise<MoveTable[]> {
    const { rows } = await this.catalog.pool.query<{ name: string; key_column: string; key_type: KeyType }>(
      "SELECT name, key_column, key_type FROM pgtide.tables WHERE keyspace_id = $1 AND kind = 'sharded' ORDER BY name", [keyspaceId]);
    const pool = await this.shards.pool(sourceShard);
    const out: MoveTable[] = [];
    for (const r of rows) {
      const cols = await tableColumns(pool, r.name);
      if (!cols) throw new MoverError('UNKNOWN_TABLE', `relation "${r.name}" does not exist on source shard ${sourceShard}`, { sqlstate: '42P01' });
      const columns = cols.filter((c) => !c.generated).map((c) => c.name);
      const keyIndex = columns.indexOf(r.key_column);
      if (keyIndex < 0) throw new MoverError('UNKNOWN_COLUMN', `key column "${r.key_column}" of "${r.name}" is missing on shard ${sourceShard}`, { sqlstate: '42703' });
      out.push({ name: r.name, keyColumn: r.key_column, keyType: r.key_type, columns, keyIndex, uniqueKey: await hasUniqueIndexOn(pool, r.name, r.key_column) });
    }
    return out;
  }

  /**
   * 53100 when the target has a max_bytes and the partition does not fit under it next to what
   * the target holds and what other planned moves reserved (sizes.ts). Returns the partition's
   * estimated bytes, or null for an unlimited target (then nothing is measured: no scan).
   */
  async checkRoom(part: { id: number; keyspaceId: number; shardId: number }, targetShard: number, exceptJob?: number): Promise<number | null> {
    const room = await shardRoom(this.catalog.pool, () => this.shards.pool(targetShard), targetShard, exceptJob);
    if (room.maxBytes === null) return null;
    const need = (await this.partitionSizesOn(part.shardId, part.keyspaceId)).get(part.id)?.bytes ?? 0;
    const refusal = capacityRefusal(room, part.id, need);
    if (refusal) throw refusal;
    return need;
  }

  /** Estimated rows and bytes of every partition of a key space on one shard (one scan per table). */
  async partitionSizesOn(shardId: number, keyspaceId: number) {
    const tables = await this.catalog.pool.query<{ name: string; key_column: string; key_type: KeyType }>(
      "SELECT name, key_column, key_type FROM pgtide.tables WHERE keyspace_id = $1 AND kind = 'sharded' ORDER BY name", [keyspaceId]);
    const bounds = await this.catalog.pool.query<{ id: number; lo: string }>('SELECT id, lo::text AS lo FROM pgtide.partitions WHERE keyspace_id = $1', [keyspaceId]);
    const sized: SizedTable[] = tables.rows.map((r) => ({ name: r.name, keyColumn: r.key_column, keyType: r.key_type }));
    return partitionSizes(await this.shards.pool(shardId), sized, bounds.rows.map((r) => ({ id: r.id, lo: BigInt(r.lo) })));
  }

  /** Tables missing on the target are fine (preparing creates them); differing ones are refused (42804). */
  async checkTargetSchema(tables: MoveTable[], sourceShard: number, targetShard: number): Promise<MoveTable[]> {
    const sp = await this.shards.pool(sourceShard);
    const tp = await this.shards.pool(targetShard);
    const missing: MoveTable[] = [];
    for (const t of tables) {
      const theirs = await tableColumns(tp, t.name);
      if (!theirs) {
        missing.push(t);
        continue;
      }
      const ours = (await tableColumns(sp, t.name)) ?? [];
      const diff = schemaDifferences(ours.filter((c) => !c.generated), theirs.filter((c) => !c.generated));
      if (diff.length > 0) {
        throw new MoverError('SCHEMA_MISMATCH', `table "${t.name}" differs on shard ${targetShard}: ${diff.join('; ')}`, {
          sqlstate: '42804', hint: 'make the target table match the source (or drop it there and let the move create it)',
        });
      }
    }
    return missing;
  }
}

function summary(j: Job): JobSummary {
  return {
    id: j.id, kind: j.kind, partitionId: j.partitionId, sourceShard: j.sourceShard, targetShard: j.targetShard, state: j.state,
    requested: j.requested, rowsCopied: j.progress.rowsCopied ?? 0, reason: j.reason ?? j.error, createdAt: j.createdAt, updatedAt: j.updatedAt,
  };
}
