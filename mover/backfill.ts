// The copying phase: key-ordered COPY chunks from source to target, each committed with its checkpoint, throttled.
//
// A chunk is `COPY (SELECT cols … WHERE <in range> AND key > last AND key <= upper ORDER BY key)
// TO STDOUT` on the source streamed into `COPY t FROM STDIN` on the target, where `upper` is the
// n-th key after `last` (all rows of a key go in one chunk, so non-unique keys are safe). The
// target transaction that receives the rows also writes the checkpoint (last key, rows, bytes) to
// pgtide_mover.copy_state, so after a kill the copy resumes exactly after the last committed chunk.
//
// Throttle: before the copy, a probe query (a key lookup on the source) is timed a few times; its
// median is the baseline, and the bound is `latencyFactor` × baseline (never closer to the
// baseline than `latencyFloorMs`). During every chunk the probe runs once more, concurrently with
// the chunk. The decision uses the median of the last PROBE_WINDOW probes, not the last one: on a
// shared 2-core machine single probes spike for reasons that have nothing to do with the copy
// (CI once starved a move to 100-row chunks with 1 s pauses on one-off spikes and it never
// recovered inside the test's timeout). Median over the bound: the chunk size halves and the pause
// between chunks doubles; under it they recover (×1.25, ÷2). The copy never runs faster than the
// source can take with foreground latency inside the bound.
//
// Pacing: when the leader proxy ran statements on the source before the copy, the copy is paced
// (copyPipe pauses the source's socket whenever the stream runs ahead of a byte rate) instead of
// copying in full-speed chunks with pauses between them. A full-speed chunk keeps the source's and
// the target's backends and the relay busy at once; on the 2-core bench box that made every
// foreground statement overlapping it wait for a CPU, and the clients' p99 during a copy was
// 2.8-3.4x its level before, whatever the pauses. The same rows streamed at a steady pace leave
// CPU free the whole time (1.0-1.7x). The pace starts at half the first chunk's speed, halves
// when latency is over its bound and rises by a tenth per chunk inside it (AIMD); only at its
// floor do pauses between chunks take over.
//
// The baseline follows the host: after each chunk the probe runs once more with no chunk in
// flight, and the baseline is the larger of the pre-job median and the median of those idle
// probes. A host that gets slower for reasons of its own (other tenants, a noisy CI machine)
// raises both numbers alike, so the copy is not blamed and starved for it (bench/mover saw a
// pre-job baseline of 0.3 ms, idle probes at 2-3 ms, and copies cancelled at 100-row chunks).
import type pg from 'pg';
import { MOVER_SCHEMA } from './capture.js';
import { copyPipe, copyTextField } from './copy-protocol.js';
import type { ThrottleState } from './jobs.js';
import type { MoveTable } from './shards.js';
import { hashExpr, KEY_ORDER_PLAN, keyLiteral, quoteIdent, quoteTable, rangePredicate } from './sql.js';

export interface Range {
  lo: bigint;
  hi: bigint;
}

export interface Checkpoint {
  lastKey: string | null;
  done: boolean;
  rows: number;
  bytes: number;
}

export function inRange(t: MoveTable, r: Range, alias = ''): string {
  return rangePredicate(hashExpr(t.keyType, `${alias}${quoteIdent(t.keyColumn)}`), r.lo, r.hi);
}

/** `AND key > last` (nothing for the first chunk). */
export function afterKey(t: MoveTable, last: string | null): string {
  return last === null ? '' : ` AND ${quoteIdent(t.keyColumn)} > ${keyLiteral(t.keyType, last)}`;
}

export async function readCheckpoints(dst: pg.ClientBase, jobId: number): Promise<Map<string, Checkpoint>> {
  const out = new Map<string, Checkpoint>();
  const exists = await dst.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [`${MOVER_SCHEMA}.copy_state`]);
  if (!exists.rows[0]?.ok) return out;
  const { rows } = await dst.query<{ tbl: string; last_key: string | null; done: boolean; rows: string; bytes: string }>(
    `SELECT tbl, last_key, done, rows, bytes FROM ${MOVER_SCHEMA}.copy_state WHERE job_id = $1`, [jobId]);
  for (const r of rows) out.set(r.tbl, { lastKey: r.last_key, done: r.done, rows: Number(r.rows), bytes: Number(r.bytes) });
  return out;
}

/**
 * Remove target rows of the range above the checkpoint: a fresh run must find nothing there
 * (a chunk that died uncommitted left nothing, but a stray from an older, cleaned-up job might).
 */
export async function clearAboveCheckpoint(dst: pg.ClientBase, t: MoveTable, r: Range, last: string | null): Promise<number> {
  const res = await dst.query(`DELETE FROM ${quoteTable(t.name)} WHERE ${inRange(t, r)}${afterKey(t, last)}`);
  return res.rowCount ?? 0;
}

/** Copy one chunk and commit it with its checkpoint; returns the new checkpoint. */
export async function copyChunk(src: pg.ClientBase, dst: pg.ClientBase, jobId: number, t: MoveTable, r: Range, cp: Checkpoint, chunkRows: number, bytesPerSec?: number): Promise<Checkpoint> {
  const k = quoteIdent(t.keyColumn);
  const q = quoteTable(t.name);
  const cols = t.columns.map(quoteIdent).join(', ');
  const where = `${inRange(t, r)}${afterKey(t, cp.lastKey)}`;
  const n = Math.max(1, Math.floor(chunkRows));
  // A unique key ends a chunk after exactly n rows and scans the range once; any other key finds
  // the chunk's last key first, so all rows of a key go in one chunk (the range is scanned twice).
  const outSql = t.uniqueKey
    ? `COPY (SELECT ${cols} FROM ${q} WHERE ${where} ORDER BY ${k} LIMIT ${n}) TO STDOUT`
    : `COPY (SELECT ${cols} FROM ${q} WHERE ${where}
      AND ${k} <= (SELECT max(${k}) FROM (SELECT ${k} FROM ${q} WHERE ${where} ORDER BY ${k} LIMIT ${n}) s)
      ORDER BY ${k}) TO STDOUT`;
  await dst.query('BEGIN');
  await src.query(`BEGIN READ ONLY; ${KEY_ORDER_PLAN}`);
  try {
    const res = await copyPipe(src, outSql, dst, `COPY ${q} (${cols}) FROM STDIN`, bytesPerSec === undefined ? undefined : { bytesPerSec });
    await src.query('COMMIT');
    const lastKey = res.lastRow ? copyTextField(res.lastRow, t.keyIndex) : cp.lastKey;
    const next: Checkpoint = { lastKey, done: res.rows < chunkRows, rows: cp.rows + res.rows, bytes: cp.bytes + res.bytes };
    await dst.query(
      `INSERT INTO ${MOVER_SCHEMA}.copy_state (job_id, tbl, last_key, done, rows, bytes) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (job_id, tbl) DO UPDATE SET last_key = EXCLUDED.last_key, done = EXCLUDED.done, rows = EXCLUDED.rows, bytes = EXCLUDED.bytes`,
      [jobId, t.name, next.lastKey, next.done, next.rows, next.bytes]);
    await dst.query('COMMIT');
    return next;
  } catch (err) {
    await Promise.all([dst.query('ROLLBACK').catch(() => {}), src.query('ROLLBACK').catch(() => {})]);
    throw err;
  }
}

export interface ThrottleOptions {
  chunkRows: number;
  minChunkRows: number;
  maxChunkRows: number;
  latencyFactor: number;
  latencyFloorMs: number;
  maxDelayMs: number;
}

/** Adaptive chunk size and inter-chunk pause from probe latencies (see the header). */
export class Throttle {
  state: ThrottleState;

  private readonly preJobMs: number;

  constructor(private readonly opts: ThrottleOptions, baselineMs: number, prior?: ThrottleState) {
    this.preJobMs = baselineMs;
    const boundMs = this.bound(baselineMs);
    this.state = prior
      ? { ...prior, baselineMs, boundMs, idleMs: [] }
      : { baselineMs, boundMs, lastProbeMs: baselineMs, chunkRows: opts.chunkRows, delayMs: 0, throttledChunks: 0 };
  }

  private bound(baselineMs: number): number {
    return Math.max(baselineMs * this.opts.latencyFactor, baselineMs + this.opts.latencyFloorMs);
  }

  /** Feed one probe latency measured between chunks (what the host gives without the copy). */
  observeIdle(probeMs: number): void {
    const s = this.state;
    s.idleMs = [...(s.idleMs ?? []), probeMs].slice(-PROBE_WINDOW);
    s.baselineMs = Math.max(this.preJobMs, median(s.idleMs));
    s.boundMs = this.bound(s.baselineMs);
  }

  /** The foreground p99 before the copy (the leader proxy's statements on the source), ms. */
  setForegroundBaseline(p99Ms: number): void {
    if (Number.isFinite(p99Ms) && p99Ms > 0) this.state.fgBaselineMs = p99Ms;
  }

  /** The bound on the foreground p99: factor × its pre-copy level, never closer than the floor. */
  foregroundBoundMs(): number | null {
    const b = this.state.fgBaselineMs;
    return b === undefined ? null : this.bound(b);
  }

  /**
   * Feed one probe latency measured during the last chunk and, when the leader proxy ran enough
   * statements on the source meanwhile, their p99: the number issue 6 bounds. Either signal over
   * its bound (median of the last PROBE_WINDOW chunks) throttles.
   */
  observe(probeMs: number, foregroundP99Ms?: number, chunk?: { bytes: number; rows?: number; ms: number }): void {
    const s = this.state;
    // The chunk's own speed: what pacing starts from and never halves from more than.
    const speed = chunk && chunk.ms > 0 && chunk.bytes > 0 ? (chunk.bytes / chunk.ms) * 1000 : undefined;
    const startsPacing = s.bytesPerSec === undefined && s.fgBaselineMs !== undefined && speed !== undefined;
    if (startsPacing) s.bytesPerSec = Math.max(MIN_BYTES_PER_SEC, speed / 2);
    s.lastProbeMs = probeMs;
    s.recentMs = [...(s.recentMs ?? []), probeMs].slice(-PROBE_WINDOW);
    if (foregroundP99Ms !== undefined && Number.isFinite(foregroundP99Ms)) s.fgRecentMs = [...(s.fgRecentMs ?? []), foregroundP99Ms].slice(-PROBE_WINDOW);
    // No sample this chunk: the oldest ages out, so old slow chunks cannot hold the copy at its
    // slowest for ever (bench/mover starved a copy at 100-row chunks this way: too short to sample).
    else if (s.fgRecentMs?.length) s.fgRecentMs = s.fgRecentMs.slice(1);
    const fgBound = this.foregroundBoundMs();
    const fgOver = fgBound !== null && (s.fgRecentMs?.length ?? 0) > 0 && median(s.fgRecentMs!) > fgBound;
    if (median(s.recentMs) > s.boundMs || fgOver) {
      s.throttledChunks++;
      if (s.bytesPerSec !== undefined) {
        // Paced: slow the stream first; pauses between chunks only once the pace is at its floor.
        const from = speed === undefined ? s.bytesPerSec : Math.min(s.bytesPerSec, speed);
        const atFloor = s.bytesPerSec <= MIN_BYTES_PER_SEC;
        s.bytesPerSec = Math.max(MIN_BYTES_PER_SEC, from / 2);
        if (atFloor) s.delayMs = Math.min(this.opts.maxDelayMs, Math.max(10, s.delayMs * 2));
        return;
      }
      s.chunkRows = Math.max(this.opts.minChunkRows, Math.floor(s.chunkRows / 2));
      s.delayMs = Math.min(this.opts.maxDelayMs, Math.max(10, s.delayMs * 2));
    } else {
      // Grow by a quarter, or at once to about a second of copying at the last chunk's speed: each
      // chunk starts and drains the source → target stream, and six 20-50 k-row chunks copied 200 k
      // rows in 0.95 s where one chunk took 0.6 s (bench/mover).
      const second = chunk?.rows !== undefined && chunk.ms > 0 ? Math.floor((chunk.rows / chunk.ms) * 1000 * UNPACED_CHUNK_SECONDS) : 0;
      s.chunkRows = Math.min(this.opts.maxChunkRows, Math.max(Math.ceil(s.chunkRows * 1.25), second));
      s.delayMs = s.delayMs < 2 ? 0 : s.delayMs / 2;
      if (s.bytesPerSec !== undefined && s.delayMs === 0 && !startsPacing) s.bytesPerSec *= 1.1;
    }
  }
}

/** An unthrottled chunk grows to about this much copying, s. */
const UNPACED_CHUNK_SECONDS = 1;

/** The slowest pace, bytes/s (below it, pauses between chunks take over). */
export const MIN_BYTES_PER_SEC = 256 * 1024;

/** Probes whose median decides; odd, so the median is one of them. */
export const PROBE_WINDOW = 5;

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Time one run of the probe query (milliseconds). */
export async function probe(pool: pg.Pool, t: MoveTable, key: string | null): Promise<number> {
  const t0 = performance.now();
  await pool.query(`SELECT 1 FROM ${quoteTable(t.name)} WHERE ${quoteIdent(t.keyColumn)} = $1 LIMIT 1`, [key]);
  return performance.now() - t0;
}

export async function baselineLatency(pool: pg.Pool, t: MoveTable, samples = 7): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < samples; i++) xs.push(await probe(pool, t, null));
  return median(xs);
}

/** Rows of the range, estimated from the planner's statistics (for the ETA; no scan). */
export async function estimateRows(src: pg.ClientBase, tables: MoveTable[], r: Range): Promise<number> {
  let total = 0;
  const share = Number(r.hi - r.lo) / 2 ** 64;
  for (const t of tables) {
    const { rows } = await src.query<{ n: number | null }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)', [quoteTable(t.name)]);
    const n = rows[0]?.n ?? 0;
    total += n > 0 ? n * share : 0;
  }
  return Math.round(total);
}
