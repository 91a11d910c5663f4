// VDiff-like verification of a range: chunked checksums on source and target, per-key repair of mismatches.
//
// The range of each table is walked in key order in chunks of `chunkRows` (chunk bounds come from
// the source). For each chunk both sides compute count and md5(string_agg(row text ORDER BY key,
// row text)). A differing chunk is narrowed to keys (per-key md5 on both sides), those keys are
// re-synced from the source's current image, and compared again; a key that still differs after
// `rounds` is unresolved unless it is waiting in the changelog (a write in flight, which the
// drain will carry over). Keys only on the target beyond the last source key are found by a final
// open-ended chunk. A mismatch is never ignored: it is repaired or reported.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { MOVER_SCHEMA } from './capture.js';
import { afterKey, inRange, type Range } from './backfill.js';
import type { VerificationResult } from './jobs.js';
import type { MoveTable } from './shards.js';
import { KEY_ORDER_PLAN, keyLiteral, quoteIdent, quoteTable } from './sql.js';
import { resyncKeys } from './sync.js';

function rowText(t: MoveTable): string {
  return `ROW(${t.columns.map(quoteIdent).join(', ')})::text`;
}

function chunkWhere(t: MoveTable, r: Range, last: string | null, upper: string | null): string {
  const k = quoteIdent(t.keyColumn);
  return `${inRange(t, r)}${afterKey(t, last)}${upper === null ? '' : ` AND ${k} <= ${keyLiteral(t.keyType, upper)}`}`;
}

/** The last key of the next `chunkRows` keys of the range after `last` (null: none left), in key order (KEY_ORDER_PLAN). */
async function chunkUpper(c: pg.ClientBase, t: MoveTable, r: Range, last: string | null, chunkRows: number): Promise<string | null> {
  const k = quoteIdent(t.keyColumn);
  const res = await c.query(`${KEY_ORDER_PLAN};
    SELECT max(${k})::text AS upper FROM (SELECT ${k} FROM ${quoteTable(t.name)} WHERE ${inRange(t, r)}${afterKey(t, last)} ORDER BY ${k} LIMIT ${chunkRows}) s`) as unknown as pg.QueryResult<{ upper: string | null }>[];
  return res.at(-1)?.rows[0]?.upper ?? null;
}

async function chunkSum(c: pg.ClientBase, t: MoveTable, where: string): Promise<{ n: number; sum: string | null }> {
  const { rows } = await c.query<{ n: string; sum: string | null }>(
    `SELECT count(*) AS n, md5(string_agg(${rowText(t)}, E'\\n' ORDER BY ${quoteIdent(t.keyColumn)}, ${rowText(t)})) AS sum FROM ${quoteTable(t.name)} WHERE ${where}`);
  return { n: Number(rows[0]!.n), sum: rows[0]!.sum };
}

async function keySums(c: pg.ClientBase, t: MoveTable, where: string): Promise<Map<string, string>> {
  const k = quoteIdent(t.keyColumn);
  const { rows } = await c.query<{ k: string; sum: string }>(
    `SELECT ${k}::text AS k, md5(string_agg(${rowText(t)}, E'\\n' ORDER BY ${rowText(t)})) AS sum FROM ${quoteTable(t.name)} WHERE ${where} GROUP BY ${k}`);
  return new Map(rows.map((r) => [r.k, r.sum]));
}

function differingKeys(a: Map<string, string>, b: Map<string, string>): string[] {
  const out = new Set<string>();
  for (const [k, v] of a) if (b.get(k) !== v) out.add(k);
  for (const k of b.keys()) if (!a.has(k)) out.add(k);
  return [...out];
}

async function pendingKeys(src: pg.ClientBase, jobId: number, t: MoveTable, keys: string[]): Promise<Set<string>> {
  const { rows } = await src.query<{ key: string }>(`SELECT DISTINCT key FROM ${MOVER_SCHEMA}.changelog WHERE job_id = $1 AND tbl = $2 AND key = ANY($3::text[])`, [jobId, t.name, keys]);
  return new Set(rows.map((r) => r.key));
}

export interface VerifyOptions {
  chunkRows: number;
  rounds: number;
  /** Also repair (re-sync) differing keys; false only reports. */
  repair: boolean;
}

/** Verify (and repair) one range of every table; `srcRead` may be a second source connection. */
export async function verifyRange(src: pg.ClientBase, dst: pg.ClientBase, jobId: number, tables: MoveTable[], r: Range, opts: VerifyOptions): Promise<VerificationResult> {
  const result: VerificationResult = { at: new Date().toISOString(), ok: true, tables: [], rounds: opts.rounds };
  for (const t of tables) {
    const k = quoteIdent(t.keyColumn);
    const q = quoteTable(t.name);
    const stats = { table: t.name, chunks: 0, rows: 0, mismatchedChunks: 0, repairedKeys: 0, unresolvedKeys: 0 };
    let last: string | null = null;
    for (;;) {
      const upper = await chunkUpper(src, t, r, last, opts.chunkRows); // null: past the source's last key, an open-ended chunk
      const where = chunkWhere(t, r, last, upper);
      // Both sides at once: they are different servers (this halved verification in bench/mover).
      const [a, bsum] = await Promise.all([chunkSum(src, t, where), chunkSum(dst, t, where)]);
      stats.chunks++;
      stats.rows += a.n;
      if (a.n !== bsum.n || a.sum !== bsum.sum) {
        stats.mismatchedChunks++;
        let keys = differingKeys(...await Promise.all([keySums(src, t, where), keySums(dst, t, where)]));
        for (let round = 0; round < opts.rounds && keys.length > 0 && opts.repair; round++) {
          await resyncKeys(src, dst, new Map([[t, keys]]));
          if (round === 0) stats.repairedKeys += keys.length;
          const list = keys.map((x) => keyLiteral(t.keyType, x)).join(', ');
          const narrow = `${inRange(t, r)} AND ${k} IN (${list})`;
          keys = differingKeys(...await Promise.all([keySums(src, t, narrow), keySums(dst, t, narrow)]));
        }
        if (keys.length > 0) {
          const pending = await pendingKeys(src, jobId, t, keys);
          const unresolved = keys.filter((x) => !pending.has(x));
          stats.unresolvedKeys += unresolved.length;
          if (unresolved.length > 0) result.ok = false;
        }
      }
      if (upper === null) break;
      last = upper;
    }
    result.tables.push(stats);
  }
  return result;
}

/**
 * Rows and a checksum of one table's range on one server (VERIFY PARTITION on a partition no job
 * is moving): the same key-ordered chunks and per-chunk md5 as verifyRange, folded into one md5,
 * so two servers holding the same rows give the same checksum (for the same chunkRows).
 */
export async function rangeFingerprint(c: pg.ClientBase, t: MoveTable, r: Range, chunkRows: number): Promise<{ rows: number; chunks: number; checksum: string }> {
  const k = quoteIdent(t.keyColumn);
  const q = quoteTable(t.name);
  const h = createHash('md5');
  let last: string | null = null;
  let rows = 0;
  let chunks = 0;
  for (;;) {
    const upper = await chunkUpper(c, t, r, last, chunkRows);
    if (upper === null) break;
    const sum = await chunkSum(c, t, chunkWhere(t, r, last, upper));
    h.update(`${sum.n}:${sum.sum ?? ''}\n`);
    rows += sum.n;
    chunks++;
    last = upper;
  }
  return { rows, chunks, checksum: h.digest('hex') };
}

/** Rows of the range on a server that should hold none of it (stray rows: counted, never deleted). */
export async function rangeCount(c: pg.ClientBase, t: MoveTable, r: Range): Promise<number> {
  const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteTable(t.name)} WHERE ${inRange(t, r)}`);
  return Number(rows[0]!.n);
}
