// Re-sync keys from the source's current row image to the target, and drain the changelog with it.
//
// For a set of keys, the target's rows with those keys are replaced by the source's rows with those
// keys as of one source snapshot (delete, then insert), in one target transaction. Keys need not
// be unique (a colocated child table holds many rows per key). Re-running it is harmless and the
// last run wins with the newest image, so order and retries cannot leave a stale row.
import type pg from 'pg';
import { MOVER_SCHEMA } from './capture.js';
import type { MoveTable } from './shards.js';
import { quoteIdent, quoteTable, sqlKeyType } from './sql.js';

/** Source rows of `keys` as one JSON array text, read inside the caller's (snapshot) transaction. */
async function readRowsJson(src: pg.ClientBase, t: MoveTable, keys: string[]): Promise<string> {
  const cols = t.columns.map(quoteIdent).join(', ');
  const { rows } = await src.query<{ j: string | null }>(
    `SELECT json_agg(r)::text AS j FROM (SELECT ${cols} FROM ${quoteTable(t.name)} WHERE ${quoteIdent(t.keyColumn)} = ANY($1::${sqlKeyType(t.keyType)}[])) r`, [keys]);
  return rows[0]?.j ?? '[]';
}

/** In the caller's target transaction: replace the rows of `keys` with `json` (from readRowsJson). */
async function writeRowsJson(dst: pg.ClientBase, t: MoveTable, keys: string[], json: string): Promise<number> {
  const cols = t.columns.map(quoteIdent).join(', ');
  await dst.query(`DELETE FROM ${quoteTable(t.name)} WHERE ${quoteIdent(t.keyColumn)} = ANY($1::${sqlKeyType(t.keyType)}[])`, [keys]);
  if (json === '[]') return 0;
  const r = await dst.query(`INSERT INTO ${quoteTable(t.name)} (${cols}) SELECT ${cols} FROM json_populate_recordset(NULL::${quoteTable(t.name)}, $1::json)`, [json]);
  return r.rowCount ?? 0;
}

/** Replace the target's rows of `keys` (per table) with the source's current rows. */
export async function resyncKeys(src: pg.ClientBase, dst: pg.ClientBase, byTable: Map<MoveTable, string[]>): Promise<number> {
  const images: [MoveTable, string[], string][] = [];
  await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const [t, keys] of byTable) if (keys.length > 0) images.push([t, keys, await readRowsJson(src, t, keys)]);
    await src.query('COMMIT');
  } catch (err) {
    await src.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return writeImages(dst, images);
}

async function writeImages(dst: pg.ClientBase, images: [MoveTable, string[], string][]): Promise<number> {
  if (images.length === 0) return 0;
  let n = 0;
  await dst.query('BEGIN');
  try {
    for (const [t, keys, json] of images) n += await writeRowsJson(dst, t, keys, json);
    await dst.query('COMMIT');
  } catch (err) {
    await dst.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return n;
}

export interface DrainResult {
  /** Changelog entries consumed. */
  entries: number;
  /** Distinct keys re-synced. */
  keys: number;
}

/**
 * One pass over (at most `batch`) changelog entries: read the entries and the current rows of
 * their keys in one REPEATABLE READ snapshot of the source, write the rows to the target, then
 * delete exactly the entries read (by seq: an entry whose transaction committed after our
 * snapshot has a lower seq than some we read, and must survive for the next pass).
 */
export async function drainOnce(src: pg.ClientBase, dst: pg.ClientBase, jobId: number, tables: MoveTable[], batch: number): Promise<DrainResult> {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const images: [MoveTable, string[], string][] = [];
  let seqs: string[] = [];
  const keysByTable = new Map<MoveTable, Set<string>>();
  await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const { rows } = await src.query<{ seq: string; tbl: string; key: string }>(
      `SELECT seq::text AS seq, tbl, key FROM ${MOVER_SCHEMA}.changelog WHERE job_id = $1 ORDER BY seq LIMIT $2`, [jobId, batch]);
    seqs = rows.map((r) => r.seq);
    for (const r of rows) {
      const t = byName.get(r.tbl);
      if (!t) continue; // a table no longer in the key space: nothing to mirror
      let s = keysByTable.get(t);
      if (!s) keysByTable.set(t, (s = new Set()));
      s.add(r.key);
    }
    for (const [t, keys] of keysByTable) images.push([t, [...keys], await readRowsJson(src, t, [...keys])]);
    await src.query('COMMIT');
  } catch (err) {
    await src.query('ROLLBACK').catch(() => {});
    throw err;
  }
  if (seqs.length === 0) return { entries: 0, keys: 0 };
  await writeImages(dst, images);
  await src.query(`DELETE FROM ${MOVER_SCHEMA}.changelog WHERE job_id = $1 AND seq = ANY($2::bigint[])`, [jobId, seqs]);
  let keys = 0;
  for (const s of keysByTable.values()) keys += s.size;
  return { entries: seqs.length, keys };
}
