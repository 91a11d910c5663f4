// Postgres-compatible extended hashes (seed 0): the hash that places every key in a partition.
//
// Partitions are ranges of the raw value Postgres itself returns for `hashint8extended(v, 0)`,
// `hashtextextended(v, 0)` and `uuid_hash_extended(v, 0)`, so a shard can select a partition's
// rows on its own. All three are Bob Jenkins' lookup3 as written in PG's src/common/hashfn.c
// (`hash_bytes_extended`, `hash_bytes_uint32_extended`), returning `(uint64) b << 32 | c`, read
// by SQL as a signed int64.
//
// The int path runs once per routed query, so the 32-bit arithmetic (lookup3 has only adds,
// xors and rotates) is done on numbers kept in int32 range with `| 0`, and a BigInt is built
// only when the caller asks for one. Routing compares hashes as (hi: int32, lo: uint32) pairs via
// `hashKeyParts`, which allocates nothing.
import { PgtideError } from './errors.js';
import type { KeyType } from './types.js';

/** A value that cannot be a key of the given type: carries the SQLSTATE Postgres would raise. */
export class KeyValueError extends PgtideError {
  constructor(sqlstate: '22P02' | '22003', message: string) {
    super(sqlstate === '22003' ? 'KEY_OUT_OF_RANGE' : 'KEY_INVALID_SYNTAX', message, { sqlstate });
  }
}

/** Result slot of the *Parts functions: hi is the signed upper half, lo the unsigned lower half. */
export interface HashParts {
  hi: number;
  lo: number;
}

// lookup3 state after `final`: only b and c make up the 64-bit result. Module-level so the hot
// path returns two words without allocating; JS is single-threaded and nothing here re-enters.
let rb = 0;
let rc = 0;

/** lookup3 final(a, b, c); leaves b and c in rb/rc. */
function final3(a: number, b: number, c: number): void {
  c ^= b; c = (c - ((b << 14) | (b >>> 18))) | 0;
  a ^= c; a = (a - ((c << 11) | (c >>> 21))) | 0;
  b ^= a; b = (b - ((a << 25) | (a >>> 7))) | 0;
  c ^= b; c = (c - ((b << 16) | (b >>> 16))) | 0;
  a ^= c; a = (a - ((c << 4) | (c >>> 28))) | 0;
  b ^= a; b = (b - ((a << 14) | (a >>> 18))) | 0;
  c ^= b; c = (c - ((b << 24) | (b >>> 8))) | 0;
  rb = b;
  rc = c;
}

/** hash_bytes_uint32_extended(k, 0). */
function hashUint32Raw(k: number): void {
  const init = (0x9e3779b9 + 4 + 3923095) | 0;
  final3((init + k) | 0, init, init);
}

/** hash_bytes_extended(bytes[0..len), 0), little-endian word reads as on x86/arm64. */
function hashBytesRaw(k: Uint8Array, len: number): void {
  let a = (0x9e3779b9 + len + 3923095) | 0;
  let b = a;
  let c = a;
  let i = 0;
  let rem = len;
  while (rem >= 12) {
    a = (a + (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24))) | 0;
    b = (b + (k[i + 4]! | (k[i + 5]! << 8) | (k[i + 6]! << 16) | (k[i + 7]! << 24))) | 0;
    c = (c + (k[i + 8]! | (k[i + 9]! << 8) | (k[i + 10]! << 16) | (k[i + 11]! << 24))) | 0;
    // mix(a, b, c)
    a = (a - c) | 0; a ^= (c << 4) | (c >>> 28); c = (c + b) | 0;
    b = (b - a) | 0; b ^= (a << 6) | (a >>> 26); a = (a + c) | 0;
    c = (c - b) | 0; c ^= (b << 8) | (b >>> 24); b = (b + a) | 0;
    a = (a - c) | 0; a ^= (c << 16) | (c >>> 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= (a << 19) | (a >>> 13); a = (a + c) | 0;
    c = (c - b) | 0; c ^= (b << 4) | (b >>> 28); b = (b + a) | 0;
    i += 12;
    rem -= 12;
  }
  // The C switch falls through from the tail length down; the lowest byte of c is reserved
  // for the length in lookup3, hence c's bytes start at << 8.
  if (rem >= 11) c = (c + (k[i + 10]! << 24)) | 0;
  if (rem >= 10) c = (c + (k[i + 9]! << 16)) | 0;
  if (rem >= 9) c = (c + (k[i + 8]! << 8)) | 0;
  if (rem >= 8) b = (b + (k[i + 7]! << 24)) | 0;
  if (rem >= 7) b = (b + (k[i + 6]! << 16)) | 0;
  if (rem >= 6) b = (b + (k[i + 5]! << 8)) | 0;
  if (rem >= 5) b = (b + k[i + 4]!) | 0;
  if (rem >= 4) a = (a + (k[i + 3]! << 24)) | 0;
  if (rem >= 3) a = (a + (k[i + 2]! << 16)) | 0;
  if (rem >= 2) a = (a + (k[i + 1]! << 8)) | 0;
  if (rem >= 1) a = (a + k[i]!) | 0;
  final3(a, b, c);
}

function resultBigint(): bigint {
  return (BigInt(rb) << 32n) + BigInt(rc >>> 0);
}

const TWO32 = 4294967296;

/** hashint8extended of a safe integer, result in rb/rc. */
function hashInt8NumberRaw(v: number): void {
  const hi = Math.floor(v / TWO32);
  const lo = (v - hi * TWO32) >>> 0;
  // Postgres folds the high half in so that int2/int4/int8 of one value hash alike.
  hashUint32Raw(v >= 0 ? lo ^ hi : lo ^ ~hi);
}

function hashInt8BigintRaw(v: bigint): void {
  if (v >= -9007199254740991n && v <= 9007199254740991n) {
    hashInt8NumberRaw(Number(v));
    return;
  }
  const lo = Number(BigInt.asUintN(32, v));
  const hi = Number(BigInt.asIntN(32, v >> 32n));
  hashUint32Raw(v >= 0n ? lo ^ hi : lo ^ ~hi);
}

/** hashint8extended(v, 0) as Postgres returns it (signed int64). */
export function hashInt8(v: bigint): bigint {
  hashInt8BigintRaw(BigInt.asIntN(64, v));
  return resultBigint();
}

/** hashint8extended(v, 0) of a safe integer (|v| < 2^53), without BigInt until the end. */
export function hashInt8Number(v: number): bigint {
  hashInt8NumberRaw(v);
  return resultBigint();
}

/** hashint8extended(v, 0) as hi/lo halves written into `out` (allocation-free). */
export function hashInt8Parts(v: number | bigint, out: HashParts): HashParts {
  if (typeof v === 'number') hashInt8NumberRaw(v);
  else hashInt8BigintRaw(v);
  out.hi = rb;
  out.lo = rc >>> 0;
  return out;
}

// Scratch buffer for UTF-8 / uuid bytes; grows on demand and is reused, since keys are short.
let scratch = new Uint8Array(256);
const encoder = new TextEncoder();

function utf8Into(s: string): number {
  // A UTF-16 code unit becomes at most 3 UTF-8 bytes.
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(Math.max(s.length * 3, scratch.length * 2));
  let n = 0;
  for (; n < s.length; n++) {
    const ch = s.charCodeAt(n);
    if (ch >= 0x80) break;
    scratch[n] = ch;
  }
  if (n === s.length) return n;
  return n + encoder.encodeInto(s.slice(n), scratch.subarray(n)).written;
}

/** hashtextextended(s, 0) for a deterministic collation: lookup3 over the UTF-8 bytes. */
export function hashText(s: string): bigint {
  const len = utf8Into(s); // may replace `scratch`, so read it only afterwards
  hashBytesRaw(scratch, len);
  return resultBigint();
}

/** hash_bytes_extended(bytes, 0): the same function over raw bytes (a binary text parameter). */
export function hashBytes(bytes: Uint8Array): bigint {
  hashBytesRaw(bytes, bytes.length);
  return resultBigint();
}

/** hash_bytes_extended(bytes, 0) into `out`: binary text/uuid parameters hash without decoding. */
export function hashBytesParts(bytes: Uint8Array, out: HashParts): HashParts {
  hashBytesRaw(bytes, bytes.length);
  out.hi = rb;
  out.lo = rc >>> 0;
  return out;
}

function hexVal(ch: number): number {
  if (ch >= 48 && ch <= 57) return ch - 48;
  if (ch >= 97 && ch <= 102) return ch - 87;
  if (ch >= 65 && ch <= 70) return ch - 55;
  return -1;
}

/**
 * Parse a uuid the way Postgres's uuid_in does: optional braces, hex digits in either case, and
 * a hyphen allowed after any group of four hex digits (so the canonical form and the bare
 * 32-digit form both pass). Writes the 16 bytes into `into`.
 */
export function parseUuid(s: string, into: Uint8Array = new Uint8Array(16)): Uint8Array {
  let p = 0;
  let braces = false;
  if (s.charCodeAt(0) === 123 /* { */) {
    braces = true;
    p = 1;
  }
  for (let i = 0; i < 16; i++) {
    const h = hexVal(s.charCodeAt(p));
    const l = hexVal(s.charCodeAt(p + 1));
    if (h < 0 || l < 0) throw invalidUuid(s);
    into[i] = (h << 4) | l;
    p += 2;
    if (s.charCodeAt(p) === 45 /* - */ && (i & 1) === 1 && i < 15) p++;
  }
  if (braces) {
    if (s.charCodeAt(p) !== 125 /* } */) throw invalidUuid(s);
    p++;
  }
  if (p !== s.length) throw invalidUuid(s);
  return into;
}

function invalidUuid(s: string): KeyValueError {
  return new KeyValueError('22P02', `invalid input syntax for type uuid: "${s}"`);
}

/** uuid_hash_extended(v, 0). Accepts what Postgres's uuid_in accepts; throws 22P02 otherwise. */
export function hashUuid(s: string): bigint {
  parseUuid(s, scratch);
  hashBytesRaw(scratch, 16);
  return resultBigint();
}

const INT_NAMES = { int2: 'smallint', int4: 'integer', int8: 'bigint' } as const;
type IntType = keyof typeof INT_NAMES;
const INT_MIN = { int2: -32768n, int4: -2147483648n, int8: -(2n ** 63n) } as const;
const INT_MAX = { int2: 32767n, int4: 2147483647n, int8: 2n ** 63n - 1n } as const;

function isSpace(ch: number): boolean {
  // isspace() in the C locale, as Postgres's int parsers use.
  return ch === 32 || (ch >= 9 && ch <= 13);
}

/**
 * Parse the text form of an integer like Postgres 15's int2in/int4in/int8in: surrounding
 * whitespace, one optional sign, decimal digits only. Returns a number when it is a safe
 * integer (the common case, no BigInt) and a bigint otherwise.
 */
export function parseIntKey(type: IntType, s: string): number | bigint {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s.charCodeAt(start))) start++;
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--;
  let p = start;
  const sign = s.charCodeAt(p);
  if (sign === 45 || sign === 43) p++;
  if (p === end) throw new KeyValueError('22P02', `invalid input syntax for type ${INT_NAMES[type]}: "${s}"`);
  for (let i = p; i < end; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 48 || ch > 57) throw new KeyValueError('22P02', `invalid input syntax for type ${INT_NAMES[type]}: "${s}"`);
  }
  const body = start === 0 && end === s.length ? s : s.slice(start, end);
  let v: number | bigint;
  if (end - p <= 15) {
    v = Number(body);
    if (type === 'int8') return v;
    if (v >= Number(INT_MIN[type]) && v <= Number(INT_MAX[type])) return v;
  } else {
    v = BigInt(body);
    if (v >= INT_MIN[type] && v <= INT_MAX[type]) return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  }
  throw new KeyValueError('22003', `value "${s}" is out of range for type ${INT_NAMES[type]}`);
}

function checkIntRange(type: IntType, v: number | bigint): void {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  if (b < INT_MIN[type] || b > INT_MAX[type]) {
    throw new KeyValueError('22003', `value "${String(v)}" is out of range for type ${INT_NAMES[type]}`);
  }
}

/**
 * Hash one key value of the given type into `out` without allocating on the int path.
 * String values are the text form of the value (parsed with Postgres's range checks).
 */
export function hashKeyParts(type: KeyType, value: string | bigint | number, out: HashParts): HashParts {
  switch (type) {
    case 'int2':
    case 'int4':
    case 'int8': {
      let v: number | bigint;
      if (typeof value === 'string') v = parseIntKey(type, value);
      else {
        if (typeof value === 'number' && !Number.isInteger(value)) {
          throw new KeyValueError('22P02', `invalid input syntax for type ${INT_NAMES[type]}: "${value}"`);
        }
        checkIntRange(type, value);
        v = typeof value === 'number' && !Number.isSafeInteger(value) ? BigInt(value) : value;
      }
      return hashInt8Parts(v, out);
    }
    case 'text':
    case 'varchar': {
      const len = utf8Into(String(value)); // may replace `scratch`, so read it only afterwards
      hashBytesRaw(scratch, len);
      break;
    }
    case 'uuid':
      if (typeof value !== 'string') throw invalidUuid(String(value));
      parseUuid(value, scratch);
      hashBytesRaw(scratch, 16);
      break;
  }
  out.hi = rb;
  out.lo = rc >>> 0;
  return out;
}

/** Hash one key value as Postgres would for a column of `type` (signed int64). */
export function hashKey(type: KeyType, value: string | bigint | number): bigint {
  const out = hashKeyParts(type, value, { hi: 0, lo: 0 });
  return (BigInt(out.hi) << 32n) + BigInt(out.lo);
}

/** Split a signed 64-bit hash into the hi/lo pair used by the allocation-free comparisons. */
export function hashToParts(h: bigint, out: HashParts = { hi: 0, lo: 0 }): HashParts {
  out.hi = Number(BigInt.asIntN(32, h >> 32n));
  out.lo = Number(BigInt.asUintN(32, h));
  return out;
}

/** The signed 64-bit hash of a hi/lo pair. */
export function partsToHash(p: HashParts): bigint {
  return (BigInt(p.hi) << 32n) + BigInt(p.lo >>> 0);
}
