// The source side of a move: changelog table, capture triggers (same transaction as the write) and the fence.
//
// One plpgsql function per (job, table), with the key column and the hash range written into its
// body, fires AFTER INSERT/UPDATE/DELETE FOR EACH ROW. In capture mode it appends (table, key,
// txid) to pgtide_mover.changelog when the row's key hashes into the range; in fence mode it
// raises FENCE_SQLSTATE instead, so the write (and its whole transaction) fails. The mover's own
// sessions set `pgtide.mover_bypass = on` to delete moved rows behind the fence without tripping it.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { FENCE_SQLSTATE } from './errors.js';
import type { MoveTable } from './shards.js';
import { hashExpr, quoteIdent, quoteLiteral, quoteTable, rangePredicate } from './sql.js';

export const MOVER_SCHEMA = 'pgtide_mover';
export const BYPASS_SETTING = 'pgtide.mover_bypass';

export interface CaptureSpec {
  jobId: number;
  lo: bigint;
  hi: bigint;
  tables: MoveTable[];
}

export type TriggerMode = 'capture' | 'fence';

export function functionName(jobId: number, table: string): string {
  const tag = createHash('md5').update(table).digest('hex').slice(0, 10);
  return `${MOVER_SCHEMA}.capture_j${jobId}_${tag}`;
}

export function triggerName(jobId: number): string {
  return `pgtide_capture_j${jobId}`;
}

/** The changelog on the source and the copy checkpoints on the target live in the same schema. */
export async function ensureMoverSchema(c: pg.ClientBase): Promise<void> {
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${MOVER_SCHEMA}`).catch(async (err: { code?: string }) => {
    if (err.code !== '23505' && err.code !== '42P06') throw err; // a concurrent CREATE SCHEMA won
  });
  await c.query(`CREATE TABLE IF NOT EXISTS ${MOVER_SCHEMA}.changelog (
      job_id int NOT NULL,
      seq    bigint GENERATED ALWAYS AS IDENTITY,
      tbl    text NOT NULL,
      key    text NOT NULL,
      txid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
      PRIMARY KEY (job_id, seq))`).catch(ignoreDuplicate);
  await c.query(`CREATE TABLE IF NOT EXISTS ${MOVER_SCHEMA}.copy_state (
      job_id   int NOT NULL,
      tbl      text NOT NULL,
      last_key text,
      done     boolean NOT NULL DEFAULT false,
      rows     bigint NOT NULL DEFAULT 0,
      bytes    bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (job_id, tbl))`).catch(ignoreDuplicate);
}

function ignoreDuplicate(err: { code?: string }): void {
  if (err.code !== '23505' && err.code !== '42P07') throw err;
}

function functionSql(spec: CaptureSpec, t: MoveTable, mode: TriggerMode): string {
  const key = (rec: 'OLD' | 'NEW') => `${rec}.${quoteIdent(t.keyColumn)}`;
  const pred = rangePredicate('h', spec.lo, spec.hi);
  const capture = (rec: 'OLD' | 'NEW') => `INSERT INTO ${MOVER_SCHEMA}.changelog (job_id, tbl, key) VALUES (${spec.jobId}, ${quoteLiteral(t.name)}, ${key(rec)}::text);`;
  // Fence: a transaction that already captured a change of this job started writing the range
  // before the fence, and the switch of the table it captured in is still waiting for it (one table
  // per transaction, below), so the final drain will see it: it passes and is captured (it may
  // write the tables in another order than the switch). Any other write to the range is refused.
  const action = (rec: 'OLD' | 'NEW') => mode === 'capture'
    ? capture(rec)
    : `IF EXISTS (SELECT 1 FROM ${MOVER_SCHEMA}.changelog WHERE job_id = ${spec.jobId} AND txid = pg_current_xact_id()) THEN
         ${capture(rec)}
       ELSE
         RAISE EXCEPTION USING ERRCODE = '${FENCE_SQLSTATE}',
           MESSAGE = format('pgtide: key %s of %s has moved to another shard (job ${spec.jobId})', ${key(rec)}, TG_TABLE_NAME),
           HINT = 'reload the routing table and retry on the new owner';
       END IF;`;
  const check = (rec: 'OLD' | 'NEW') => `h := ${hashExpr(t.keyType, key(rec))};
    IF ${pred} THEN ${action(rec)} END IF;`;
  return `CREATE OR REPLACE FUNCTION ${functionName(spec.jobId, t.name)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $pgtide$
DECLARE h int8;
BEGIN
  -- pgtide mover job ${spec.jobId}, mode ${mode}
  IF current_setting('${BYPASS_SETTING}', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
    ${check('OLD')}
  END IF;
  IF TG_OP = 'INSERT' THEN
    ${check('NEW')}
  ELSIF TG_OP = 'UPDATE' THEN
    IF ${key('NEW')} IS DISTINCT FROM ${key('OLD')} THEN
      ${check('NEW')}
    END IF;
  END IF;
  RETURN NULL;
END $pgtide$`;
}

async function inTransaction<T>(c: pg.ClientBase, lockTimeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    await c.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    const r = await fn();
    await c.query('COMMIT');
    return r;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Install (or re-install) the capture triggers. CREATE TRIGGER takes SHARE ROW EXCLUSIVE, which
 * waits for every transaction that is writing the table: once this commits, every earlier write is
 * committed (so the backfill sees it) and every later one fires the trigger. One table per
 * transaction: holding one table's lock while waiting for another's could deadlock with an
 * application transaction that writes the tables in the other order. lock_timeout keeps a long
 * transaction from queueing the foreground behind us; the caller retries (55P03 is transient).
 */
export async function installCapture(c: pg.ClientBase, spec: CaptureSpec, lockTimeoutMs = 2000): Promise<void> {
  await ensureMoverSchema(c);
  for (const t of spec.tables) {
    await inTransaction(c, lockTimeoutMs, async () => {
      await c.query(functionSql(spec, t, 'capture'));
      await c.query(`DROP TRIGGER IF EXISTS ${triggerName(spec.jobId)} ON ${quoteTable(t.name)}`);
      await c.query(`CREATE TRIGGER ${triggerName(spec.jobId)} AFTER INSERT OR UPDATE OR DELETE ON ${quoteTable(t.name)}
        FOR EACH ROW EXECUTE FUNCTION ${functionName(spec.jobId, t.name)}()`);
    });
  }
}

/**
 * Switch the triggers between capture and fence, one table per transaction (see installCapture).
 * The LOCK waits for the table's in-flight writers, so when this returns no transaction that
 * passed an old trigger is still open: the changelog is final (fence) or capturing again (capture).
 * A transaction that wrote a fenced table aborts whole, so its entries for other tables vanish too;
 * one that captured a change of the job before the fence passes it (see functionSql).
 */
export async function setTriggerMode(c: pg.ClientBase, spec: CaptureSpec, mode: TriggerMode, lockTimeoutMs: number, deadline?: number): Promise<void> {
  for (const t of spec.tables) {
    const left = deadline === undefined ? lockTimeoutMs : Math.min(lockTimeoutMs, deadline - performance.now());
    // One round trip per table (this runs inside the cutover's pause): the whole transaction as one
    // simple-protocol string. A failing statement skips the rest and leaves the block aborted.
    try {
      await c.query(`BEGIN; SET LOCAL lock_timeout = ${Math.max(1, Math.round(left))}; LOCK TABLE ${quoteTable(t.name)} IN SHARE ROW EXCLUSIVE MODE; ${functionSql(spec, t, mode)}; COMMIT`);
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}

/** Which mode the source's trigger functions are in (null: not installed). */
export async function triggerMode(c: pg.ClientBase, spec: CaptureSpec): Promise<TriggerMode | null> {
  const t = spec.tables[0];
  if (!t) return null;
  const { rows } = await c.query<{ src: string | null }>('SELECT (SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)) AS src', [`${functionName(spec.jobId, t.name)}()`]);
  const src = rows[0]?.src;
  if (!src) return null;
  return src.includes('mode fence') ? 'fence' : 'capture';
}

/** Is the fence up on any of the job's tables? (reads the functions' source: takes no table lock) */
export async function anyFenced(c: pg.ClientBase, spec: CaptureSpec): Promise<boolean> {
  if (spec.tables.length === 0) return false;
  const { rows } = await c.query<{ fenced: boolean | null }>(
    `SELECT bool_or(p.prosrc LIKE '%mode fence%') AS fenced FROM unnest($1::text[]) AS f(sig) JOIN pg_proc p ON p.oid = to_regprocedure(f.sig)`,
    [spec.tables.map((t) => `${functionName(spec.jobId, t.name)}()`)]);
  return rows[0]?.fenced === true;
}

/** Drop the job's triggers, functions and changelog rows (idempotent; one table per transaction). */
export async function dropCapture(c: pg.ClientBase, spec: CaptureSpec, lockTimeoutMs = 2000): Promise<void> {
  const schema = await c.query<{ ok: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS ok', [MOVER_SCHEMA]);
  if (!schema.rows[0]?.ok) return;
  for (const t of spec.tables) {
    await inTransaction(c, lockTimeoutMs, async () => {
      const exists = await c.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [quoteTable(t.name)]);
      if (exists.rows[0]?.ok) await c.query(`DROP TRIGGER IF EXISTS ${triggerName(spec.jobId)} ON ${quoteTable(t.name)}`);
      await c.query(`DROP FUNCTION IF EXISTS ${functionName(spec.jobId, t.name)}()`);
    });
  }
  await c.query(`DELETE FROM ${MOVER_SCHEMA}.changelog WHERE job_id = $1`, [spec.jobId]).catch(ignoreMissing);
}

function ignoreMissing(err: { code?: string }): void {
  if (err.code !== '42P01') throw err;
}

/** Rows waiting in the changelog for this job. */
export async function changelogLag(c: pg.ClientBase | pg.Pool, jobId: number): Promise<number> {
  try {
    const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${MOVER_SCHEMA}.changelog WHERE job_id = $1`, [jobId]);
    return Number(rows[0]!.n);
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return 0;
    throw err;
  }
}
