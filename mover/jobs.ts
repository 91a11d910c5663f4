// Persistence of move jobs in the catalog: job rows, compare-and-set transitions, event rows, the per-job run lock.
import pg from 'pg';
import type { Catalog } from '../config/catalog.js';
import { MoverError, partitionBusy, unknownJob } from './errors.js';
import { JobState, canTransition, parseJobState } from './states.js';

/** Advisory lock class of the per-job run lock (the job id is the second key): 'pgmv'. */
const JOB_LOCK_CLASS = 0x70676d76;

export interface TableProgress {
  lastKey: string | null;
  done: boolean;
  rows: number;
  bytes: number;
}

export interface ThrottleState {
  baselineMs: number;
  boundMs: number;
  lastProbeMs: number;
  /** The last few probes (the throttle decides on their median). */
  recentMs?: number[];
  /** The last few probes between chunks (the baseline follows their median). */
  idleMs?: number[];
  chunkRows: number;
  delayMs: number;
  throttledChunks: number;
  /** p99 of the leader proxy's own statements on the source before the copy, ms (when it saw enough). */
  fgBaselineMs?: number;
  /** p99 of those statements during each of the last few chunks, ms. */
  fgRecentMs?: number[];
  /**
   * The copy's pace, bytes/s (absent: unpaced). Set once foreground statements share the source:
   * half the first chunk's speed, then halved whenever latency goes over its bound and raised by
   * a tenth per chunk inside it.
   */
  bytesPerSec?: number;
}

/** Everything a job has learned so far; each step persists its part, a resumed run reads it back. */
export interface JobProgress {
  tables?: Record<string, TableProgress>;
  rowsCopied?: number;
  bytesCopied?: number;
  estimatedRows?: number;
  copyStartedAt?: string;
  copyFinishedAt?: string;
  drainedEntries?: number;
  drainedKeys?: number;
  lag?: number;
  throttle?: ThrottleState;
  cutoverAttempts?: number;
  /** When the routing version naming the target committed (start of the cleanup grace period). */
  switchedAt?: string;
  routingVersion?: number;
  cleanedRows?: number;
  /** Estimated bytes the partition brings to the target (recorded when the target has a max_bytes). */
  sizeBytes?: number;
  /** The last VERIFY PARTITION run against this job's source and target (the job's own result stays in `verification`). */
  onDemandVerification?: VerificationResult & { repaired: boolean; note: string };
}

export interface VerificationResult {
  at: string;
  ok: boolean;
  tables: { table: string; chunks: number; rows: number; mismatchedChunks: number; repairedKeys: number; unresolvedKeys: number }[];
  rounds: number;
}

export interface CutoverRecord {
  attempts: { at: string; ok: boolean; pauseMs: number; reason?: string; steps: { step: string; ms: number }[] }[];
  pauseMs?: number;
}

export interface JobSettings {
  graceMs?: number;
  chunkRows?: number;
  cutoverBudgetMs?: number;
}

export interface Job {
  id: number;
  kind: 'move';
  partitionId: number;
  keyspaceId: number;
  lo: bigint;
  hi: bigint;
  sourceShard: number;
  targetShard: number;
  state: JobState;
  pausedFrom: JobState | null;
  requested: 'pause' | 'cancel' | null;
  reason: string | null;
  settings: JobSettings;
  progress: JobProgress;
  verification: VerificationResult | null;
  cutover: CutoverRecord | null;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export interface JobEvent {
  id: number;
  jobId: number;
  at: Date;
  fromState: string | null;
  toState: string;
  detail: string;
}

interface JobRow {
  id: number; kind: 'move'; partition_id: number; keyspace_id: number; lo: string; hi: string; source_shard: number; target_shard: number;
  state: string; paused_from: string | null; requested: 'pause' | 'cancel' | null; reason: string | null; settings: JobSettings;
  progress: JobProgress; verification: VerificationResult | null; cutover: CutoverRecord | null; error: string | null;
  created_at: Date; updated_at: Date; finished_at: Date | null;
}

const JOB_COLUMNS = `id, kind, partition_id, keyspace_id, lo::text AS lo, hi::text AS hi, source_shard, target_shard, state, paused_from,
  requested, reason, settings, progress, verification, cutover, error, created_at, updated_at, finished_at`;

function toJob(r: JobRow): Job {
  return {
    id: r.id, kind: r.kind, partitionId: r.partition_id, keyspaceId: r.keyspace_id, lo: BigInt(r.lo), hi: BigInt(r.hi),
    sourceShard: r.source_shard, targetShard: r.target_shard, state: parseJobState(r.state),
    pausedFrom: r.paused_from ? parseJobState(r.paused_from) : null, requested: r.requested, reason: r.reason,
    settings: r.settings ?? {}, progress: r.progress ?? {}, verification: r.verification, cutover: r.cutover, error: r.error,
    createdAt: r.created_at, updatedAt: r.updated_at, finishedAt: r.finished_at,
  };
}

/** Fields a step may persist along with (or without) a transition. */
export interface JobPatch {
  progress?: JobProgress;
  verification?: VerificationResult | null;
  cutover?: CutoverRecord | null;
  error?: string | null;
  reason?: string | null;
  pausedFrom?: JobState | null;
  requested?: 'pause' | 'cancel' | null;
}

function patchSql(patch: JobPatch, params: unknown[]): string[] {
  const sets: string[] = [];
  const add = (col: string, v: unknown, json = false) => {
    params.push(json && v !== null ? JSON.stringify(v) : v);
    sets.push(`${col} = $${params.length}${json ? '::jsonb' : ''}`);
  };
  // progress is merged, not replaced, so two steps persisting different fields never clobber each other.
  if (patch.progress !== undefined) {
    params.push(JSON.stringify(patch.progress));
    sets.push(`progress = progress || $${params.length}::jsonb`);
  }
  if (patch.verification !== undefined) add('verification', patch.verification, true);
  if (patch.cutover !== undefined) add('cutover', patch.cutover, true);
  if (patch.error !== undefined) add('error', patch.error);
  if (patch.reason !== undefined) add('reason', patch.reason);
  if (patch.pausedFrom !== undefined) add('paused_from', patch.pausedFrom);
  if (patch.requested !== undefined) add('requested', patch.requested);
  return sets;
}

export class JobStore {
  constructor(readonly catalog: Catalog) {}

  async load(id: number, c: pg.ClientBase | pg.Pool = this.catalog.pool): Promise<Job> {
    const { rows } = await c.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM pgtide.jobs WHERE id = $1`, [id]);
    if (!rows[0]) throw unknownJob(id);
    return toJob(rows[0]);
  }

  async list(): Promise<Job[]> {
    const { rows } = await this.catalog.pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM pgtide.jobs ORDER BY id`);
    return rows.map(toJob);
  }

  async events(id: number): Promise<JobEvent[]> {
    const { rows } = await this.catalog.pool.query<{ id: string; job_id: number; at: Date; from_state: string | null; to_state: string; detail: string }>(
      'SELECT id, job_id, at, from_state, to_state, detail FROM pgtide.job_events WHERE job_id = $1 ORDER BY id', [id]);
    return rows.map((r) => ({ id: Number(r.id), jobId: r.job_id, at: r.at, fromState: r.from_state, toState: r.to_state, detail: r.detail }));
  }

  /** The job that currently claims a partition, if any. */
  async activeJobFor(partitionId: number, c: pg.ClientBase | pg.Pool = this.catalog.pool): Promise<number | null> {
    const { rows } = await c.query<{ id: number }>("SELECT id FROM pgtide.jobs WHERE partition_id = $1 AND state NOT IN ('done', 'rolled_back')", [partitionId]);
    return rows[0]?.id ?? null;
  }

  /** Insert a planned job inside the caller's catalog transaction (the partition row is locked by then). */
  async insert(c: pg.ClientBase, j: { partitionId: number; keyspaceId: number; lo: bigint; hi: bigint; sourceShard: number; targetShard: number; settings: JobSettings }, detail: string): Promise<number> {
    try {
      await c.query('SAVEPOINT pgtide_job_insert');
      const { rows } = await c.query<{ id: number }>(
        `INSERT INTO pgtide.jobs (kind, partition_id, keyspace_id, lo, hi, source_shard, target_shard, state, settings)
         VALUES ('move', $1, $2, $3, $4, $5, $6, 'planned', $7::jsonb) RETURNING id`,
        [j.partitionId, j.keyspaceId, j.lo.toString(), j.hi.toString(), j.sourceShard, j.targetShard, JSON.stringify(j.settings)]);
      const id = rows[0]!.id;
      await c.query('INSERT INTO pgtide.job_events (job_id, from_state, to_state, detail) VALUES ($1, NULL, $2, $3)', [id, JobState.Planned, detail]);
      await c.query("SELECT pg_notify('pgtide_jobs', $1)", [String(id)]);
      return id;
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        await c.query('ROLLBACK TO SAVEPOINT pgtide_job_insert');
        const other = await this.activeJobFor(j.partitionId, c);
        throw partitionBusy(j.partitionId, other ?? 0);
      }
      throw err;
    }
  }

  /**
   * Move a job from `from` to `to` (compare-and-set on the state, so two processes can never both
   * advance it), persist `patch`, and write the event row, in one transaction (the caller's, when
   * given, so a routing change and the job's state commit together).
   */
  async transition(id: number, from: JobState, to: JobState, detail: string, patch: JobPatch = {}, c?: pg.ClientBase): Promise<Job> {
    if (!canTransition(from, to)) throw new MoverError('BAD_TRANSITION', `job ${id}: ${from} → ${to} is not a valid transition`, { sqlstate: '55000' });
    const run = async (cl: pg.ClientBase) => {
      const params: unknown[] = [id, from, to];
      const sets = patchSql(patch, params);
      const finished = to === JobState.Done || to === JobState.RolledBack ? ', finished_at = now()' : '';
      const { rows } = await cl.query<JobRow>(
        `UPDATE pgtide.jobs SET state = $3, updated_at = now()${finished}${sets.length ? ', ' + sets.join(', ') : ''}
          WHERE id = $1 AND state = $2 RETURNING ${JOB_COLUMNS}`, params);
      if (!rows[0]) {
        const now = await this.load(id, cl);
        throw new MoverError('JOB_STATE_CHANGED', `job ${id} is ${now.state}, not ${from}: another process moved it`, { sqlstate: '55000' });
      }
      await cl.query('INSERT INTO pgtide.job_events (job_id, from_state, to_state, detail) VALUES ($1, $2, $3, $4)', [id, from, to, detail]);
      await cl.query("SELECT pg_notify('pgtide_jobs', $1)", [`${id}:${to}`]);
      return toJob(rows[0]);
    };
    if (c) return run(c);
    const cl = await this.catalog.pool.connect();
    try {
      await cl.query('BEGIN');
      const j = await run(cl);
      await cl.query('COMMIT');
      return j;
    } catch (err) {
      await cl.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      cl.release();
    }
  }

  /** Persist step results without changing state; returns the fresh row (with any pause/cancel request). */
  async patch(id: number, patch: JobPatch): Promise<Job> {
    const params: unknown[] = [id];
    const sets = patchSql(patch, params);
    const { rows } = await this.catalog.pool.query<JobRow>(
      `UPDATE pgtide.jobs SET updated_at = now()${sets.length ? ', ' + sets.join(', ') : ''} WHERE id = $1 RETURNING ${JOB_COLUMNS}`, params);
    if (!rows[0]) throw unknownJob(id);
    return toJob(rows[0]);
  }

  /** An event row that is not a transition (verification, an aborted cutover, a retry). */
  async note(id: number, state: JobState, detail: string): Promise<void> {
    await this.catalog.pool.query('INSERT INTO pgtide.job_events (job_id, from_state, to_state, detail) VALUES ($1, $2, $2, $3)', [id, state, detail]);
  }

  /**
   * The run lock: a session advisory lock on a dedicated catalog connection. It is released when
   * the holder ends it or dies (the server drops a dead client's session), so the next leader can
   * take over a job whose runner was killed.
   */
  async tryLock(id: number): Promise<JobLock | null> {
    const c = new pg.Client({ connectionString: this.catalog.url, application_name: `pgtide-mover-job-${id}` });
    c.on('error', () => {});
    await c.connect();
    try {
      const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [JOB_LOCK_CLASS, id]);
      if (rows[0]?.ok) return { release: async () => { await c.end().catch(() => {}); } };
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    await c.end().catch(() => {});
    return null;
  }
}

export interface JobLock {
  release(): Promise<void>;
}
