// SQL text helpers: identifier/literal quoting, the Postgres hash expression of a key, range predicates.
import { HASH_END, type KeyType } from '../config/types.js';

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** A catalog table name ("t" or "schema.t") as a qualified SQL identifier. */
export function quoteTable(name: string): string {
  const dot = name.indexOf('.');
  if (dot < 0) return quoteIdent(name);
  return `${quoteIdent(name.slice(0, dot))}.${quoteIdent(name.slice(dot + 1))}`;
}

/** A string literal (standard_conforming_strings is on in every supported server). */
export function quoteLiteral(s: string): string {
  if (s.includes('\0')) throw new Error('NUL byte in literal');
  return `'${s.replace(/'/g, "''")}'`;
}

// The partition hash as SQL, shared with the proxy's stray filters and INSERT … SELECT.
export { sqlKeyType, hashSql as hashExpr, rangeSql as rangePredicate } from '../config/hash-sql.js';
import { sqlKeyType } from '../config/hash-sql.js';

/**
 * Planner settings for the mover's chunk queries that walk a range in key order (copy chunks,
 * verification bounds, cleanup deletes), for the current transaction only (an implicit one of a
 * multi-statement string too). The planner cannot estimate the hash-range predicate (it guesses
 * 0.5 % of the rows): it chose a full scan and a sort of every row after the checkpoint for the
 * first copy chunks (a fifth of the later chunks' speed), and a parallel index scan whose two
 * workers took 23 of a verification chunk's 33 ms to start (verifying 200 k rows: 1.3 s, 0.5 s
 * without). Walking the key's index from the checkpoint visits every row once over the whole job.
 */
export const KEY_ORDER_PLAN = 'SET LOCAL enable_sort = off; SET LOCAL max_parallel_workers_per_gather = 0';

/** A key value in text form as a typed SQL literal. */
export function keyLiteral(t: KeyType, text: string): string {
  return `${quoteLiteral(text)}::${sqlKeyType(t)}`;
}
