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

/** A key value in text form as a typed SQL literal. */
export function keyLiteral(t: KeyType, text: string): string {
  return `${quoteLiteral(text)}::${sqlKeyType(t)}`;
}
