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

/** The SQL type name of a key type, for casts of text-form keys. */
export function sqlKeyType(t: KeyType): string {
  return t === 'varchar' ? 'text' : t;
}

/** Postgres's extended hash of `expr` with seed 0: the value partitions are ranges of. */
export function hashExpr(t: KeyType, expr: string): string {
  switch (t) {
    case 'int2': case 'int4': case 'int8': return `hashint8extended((${expr})::int8, 0)`;
    case 'text': case 'varchar': return `hashtextextended((${expr})::text, 0)`;
    case 'uuid': return `uuid_hash_extended(${expr}, 0)`;
  }
}

/**
 * `h >= lo AND h < hi` for a hash expression. hi may be 2^63, which int8 cannot hold; then the
 * upper bound is implied and left out.
 */
export function rangePredicate(hash: string, lo: bigint, hi: bigint): string {
  const parts = [`${hash} >= '${lo.toString()}'::int8`];
  if (hi < HASH_END) parts.push(`${hash} < '${hi.toString()}'::int8`);
  return parts.join(' AND ');
}

/** A key value in text form as a typed SQL literal. */
export function keyLiteral(t: KeyType, text: string): string {
  return `${quoteLiteral(text)}::${sqlKeyType(t)}`;
}
