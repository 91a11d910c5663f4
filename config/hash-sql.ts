// The partition hash as SQL a shard evaluates itself: Postgres's extended hash of a key (int2 and
// int4 keys hash as int8, as in config/hash.ts), and "the hash is in these ranges".
import { HASH_END, type KeyType } from './types.js';

/** The SQL type of a key type. */
export function sqlKeyType(t: KeyType): string {
  return t === 'varchar' ? 'text' : t;
}

/** Postgres's extended hash (seed 0) of `expr`, cast as the key type hashes. */
export function hashSql(t: KeyType, expr: string): string {
  switch (t) {
    case 'int2': case 'int4': case 'int8': return `hashint8extended((${expr})::int8, 0)`;
    case 'text': case 'varchar': return `hashtextextended((${expr})::text, 0)`;
    case 'uuid': return `uuid_hash_extended((${expr})::uuid, 0)`;
  }
}

/** `h >= lo AND h < hi`; hi may be 2^63, which int8 cannot hold: the bound is then implied. */
export function rangeSql(hash: string, lo: bigint, hi: bigint): string {
  const parts = [`${hash} >= '${lo.toString()}'::int8`];
  if (hi < HASH_END) parts.push(`${hash} < '${hi.toString()}'::int8`);
  return parts.join(' AND ');
}

/** `(h in r1) OR (h in r2) …`, or `false` for no range. */
export function anyRangeSql(hash: string, ranges: readonly { lo: bigint; hi: bigint }[]): string {
  return ranges.length === 0 ? 'false' : ranges.map((r) => `(${rangeSql(hash, r.lo, r.hi)})`).join(' OR ');
}
