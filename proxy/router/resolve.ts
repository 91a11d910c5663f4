// Execute a cached route plan: literal/parameter values → key hashes → the shard ids to run on.
//
// This is the per-query half of routing (the plan came from the cache), so the int path hashes
// into one reused HashParts slot and compares partitions without BigInt.
import { PgtideError } from '../../config/errors.js';
import { hashBytesParts, hashKeyParts, KeyValueError, type HashParts } from '../../config/hash.js';
import type { RoutingIndex } from '../../config/routing.js';
import type { KeyType, Partition, TableInfo } from '../../config/types.js';
import type { KeyRef, StatementPlan } from './types.js';

/** A statement the router refuses (its plan is 'unsupported') or cannot place. */
export class RouteError extends PgtideError {
  constructor(sqlstate: string, message: string, code = 'ROUTE_UNSUPPORTED') {
    super(code, message, { sqlstate });
  }
}

// Parameter type OIDs that matter for decoding binary key parameters.
const OID = { int2: 21, int4: 23, int8: 20, text: 25, varchar: 1043, bpchar: 1042, name: 19, uuid: 2950, numeric: 1700, unknown: 705 } as const;

/**
 * Values of a bound statement: Bind's parameter values, format codes (none → all text, one →
 * all, else per parameter) and, if known, the parameter type OIDs from Parse.
 */
export interface BoundParams {
  values: readonly (Buffer | null)[] | null;
  formats?: readonly number[] | null;
  types?: readonly number[] | null;
}

const slot: HashParts = { hi: 0, lo: 0 };

function formatOf(formats: readonly number[] | null | undefined, i: number): number {
  if (!formats || formats.length === 0) return 0;
  return formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

/** Parse a Postgres array literal ('{1,2,"a b",NULL}', nested braces flattened) into elements. */
export function parseArrayText(s: string): (string | null)[] {
  const out: (string | null)[] = [];
  let i = 0;
  // Optional dimension decoration: '[1:3]={…}'.
  if (s.charCodeAt(0) === 91 /* [ */) i = s.indexOf('=') + 1;
  while (i < s.length && s[i] !== '{') i++;
  if (i >= s.length) throw new KeyValueError('22P02', `malformed array literal: "${s}"`);
  let depth = 0;
  for (; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '{') {
      depth++;
      continue;
    }
    if (ch === '}') {
      depth--;
      if (depth === 0) break;
      continue;
    }
    if (ch === ',' || ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') continue;
    if (ch === '"') {
      let v = '';
      i++;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\') i++;
        v += s[i] ?? '';
      }
      out.push(v);
      continue;
    }
    let j = i;
    let v = '';
    for (; j < s.length && s[j] !== ',' && s[j] !== '}'; j++) {
      if (s[j] === '\\') j++;
      v += s[j] ?? '';
    }
    v = v.trim();
    out.push(v.toUpperCase() === 'NULL' ? null : v);
    i = j - 1;
  }
  if (depth !== 0) throw new KeyValueError('22P02', `malformed array literal: "${s}"`);
  return out;
}

/** Hash one binary-format scalar of type `oid` (0 = unknown: judge by length) as a key of `keyType`. */
function hashBinary(keyType: KeyType, buf: Uint8Array, oid: number): HashParts {
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (keyType) {
    case 'int2':
    case 'int4':
    case 'int8': {
      if (oid === OID.text || oid === OID.varchar || oid === OID.unknown) return hashKeyParts(keyType, view.toString('utf8'), slot);
      // int2/int4/int8 hash alike, so the width of what the client sent does not matter.
      if (view.length === 8) return hashKeyParts('int8', view.readBigInt64BE(0), slot);
      if (view.length === 4) return hashKeyParts('int8', view.readInt32BE(0), slot);
      if (view.length === 2) return hashKeyParts('int8', view.readInt16BE(0), slot);
      throw new KeyValueError('22P02', `binary parameter of ${view.length} bytes is not an integer key`);
    }
    case 'text':
    case 'varchar':
      // Binary text is its UTF-8 bytes: hash them as they are.
      return hashBytesParts(view, slot);
    case 'uuid':
      if (view.length !== 16) throw new KeyValueError('22P02', `binary uuid parameter must be 16 bytes, got ${view.length}`);
      return hashBytesParts(view, slot);
  }
}

/** Elements of a binary-format array parameter (PG array_send): each element's bytes or null. */
function binaryArrayElements(buf: Buffer): { oid: number; items: (Buffer | null)[] } {
  const ndim = buf.readInt32BE(0);
  const oid = buf.readInt32BE(8);
  let off = 12;
  let count = ndim === 0 ? 0 : 1;
  for (let d = 0; d < ndim; d++) {
    count *= buf.readInt32BE(off);
    off += 8;
  }
  const items: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) {
    const len = buf.readInt32BE(off);
    off += 4;
    if (len < 0) {
      items.push(null);
      continue;
    }
    items.push(buf.subarray(off, off + len));
    off += len;
  }
  return { oid, items };
}

/**
 * Call `each` with the (hi, lo) hash of every non-NULL key value a KeyRef yields. Returns
 * false when a value cannot be read as the key type (the caller decides: scatter or error).
 */
function forEachKeyHash(ref: KeyRef, info: TableInfo, literals: readonly string[], bound: BoundParams | null, each: (h: HashParts) => void): void {
  const keyType = info.keyType!;
  if ('literal' in ref) {
    const text = literals[ref.literal];
    if (text === undefined) throw new RouteError('XX000', `route plan refers to literal ${ref.literal}, but the statement has ${literals.length}`, 'PLAN_STALE');
    if (ref.array) {
      for (const v of parseArrayText(text)) if (v !== null) each(hashKeyParts(keyType, v, slot));
    } else {
      each(hashKeyParts(keyType, text, slot));
    }
    return;
  }
  const i = ref.param - 1;
  const values = bound?.values;
  if (!values || i >= values.length) throw new RouteError('08P01', `statement refers to parameter $${ref.param}, but ${values?.length ?? 0} were bound`, 'PARAM_MISSING');
  const buf = values[i];
  if (buf === null || buf === undefined) return; // NULL matches no row
  const binary = formatOf(bound?.formats, i) === 1;
  const oid = bound?.types?.[i] ?? 0;
  if (!ref.array) {
    each(binary ? hashBinary(keyType, buf, oid) : hashKeyParts(keyType, buf.toString('utf8'), slot));
    return;
  }
  if (!binary) {
    for (const v of parseArrayText(buf.toString('utf8'))) if (v !== null) each(hashKeyParts(keyType, v, slot));
    return;
  }
  const arr = binaryArrayElements(buf);
  for (const item of arr.items) if (item !== null) each(hashBinary(keyType, item, arr.oid));
}

function sharded(plan: { table: string }, index: RoutingIndex): TableInfo {
  const info = index.table(plan.table);
  if (!info || info.kind !== 'sharded' || info.keyspaceId === undefined || info.keyType === undefined) {
    throw new RouteError('XX000', `route plan expects ${plan.table} to be sharded, but the routing table says otherwise (plan cache not invalidated?)`, 'PLAN_STALE');
  }
  return info;
}

/** Shards of the keys of a keyed plan, ascending; 'all' when a read's key cannot be read as the key type. */
function keyedShards(plan: Extract<StatementPlan, { kind: 'keyed' }>, literals: readonly string[], bound: BoundParams | null, index: RoutingIndex): number[] | 'all' {
  const info = sharded(plan, index);
  const ks = info.keyspaceId!;
  // Almost always one key → one shard: keep the first inline, allocate only for more.
  let first = -1;
  let more: number[] | undefined;
  const add = (h: HashParts): void => {
    const shard = index.partitionForParts(ks, h.hi, h.lo).shardId;
    if (first < 0 || first === shard) first = shard;
    else if (!more) more = [shard];
    else if (!more.includes(shard)) more.push(shard);
  };
  try {
    for (const ref of plan.keys) forEachKeyHash(ref, info, literals, bound, add);
  } catch (e) {
    // `WHERE int2key = 70000` or `= 5.0` is legal SQL that our key parser rejects: a read may
    // safely ask every shard; a write must fail like Postgres would on the bad value.
    if (e instanceof KeyValueError && !plan.write) return 'all';
    throw e;
  }
  if (first < 0) return [index.primaryShardId]; // only NULL keys: no row matches, any shard answers
  if (!more) return [first];
  if (plan.sameShard) {
    throw new RouteError('0A000', `cross-shard query: the keys of ${plan.table} in this statement belong to different shards`, 'CROSS_SHARD');
  }
  return [first, ...more].sort((a, b) => a - b);
}

/** The shard of each row of a multi-row INSERT (NULL keys go to the primary shard). */
export function resolveRowShards(plan: Extract<StatementPlan, { kind: 'insert-rows' }>, literals: readonly string[], bound: BoundParams | null, index: RoutingIndex): number[] {
  const info = sharded(plan, index);
  const ks = info.keyspaceId!;
  return plan.keys.map((ref) => {
    let shard = index.primaryShardId;
    forEachKeyHash(ref, info, literals, bound, (h) => {
      shard = index.partitionForParts(ks, h.hi, h.lo).shardId;
    });
    return shard;
  });
}

/**
 * Turn a plan plus this execution's literal and parameter values into the shard ids it must run
 * on, or 'all' (every data shard). Transaction, session and cursor plans answer 'all': the
 * session decides which of its linked servers they go to. 'unsupported' throws its RouteError.
 */
export function resolveShards(plan: StatementPlan, literals: readonly string[], bound: BoundParams | null, index: RoutingIndex): number[] | 'all' {
  switch (plan.kind) {
    case 'keyed':
      return keyedShards(plan, literals, bound, index);
    case 'insert-rows':
      return [...new Set(resolveRowShards(plan, literals, bound, index))].sort((a, b) => a - b);
    case 'scatter-read':
    case 'broadcast':
    case 'insert-select':
      return 'all';
    case 'reference-read':
      return [index.anyShard()];
    case 'unsharded':
      return [index.primaryShardId];
    case 'copy': {
      if (plan.query) return resolveShards(plan.query, literals, bound, index);
      const info = index.table(plan.table);
      if (info?.kind === 'sharded') return 'all';
      if (info?.kind === 'reference') return plan.direction === 'from' ? 'all' : [index.anyShard()];
      return [index.primaryShardId];
    }
    case 'transaction':
    case 'session':
    case 'cursor':
      return 'all';
    case 'unsupported':
      throw new RouteError(plan.sqlstate, plan.message);
  }
}

/**
 * For the access recorder: the partition of a keyed plan whose keys all fall in one partition
 * (the common single-key case), with the hash written to `out`; null for several partitions, a
 * NULL key or a key that cannot be read. Never throws: recording must not fail a query.
 */
export function keyedPartition(plan: Extract<StatementPlan, { kind: 'keyed' }>, literals: readonly string[], bound: BoundParams | null, index: RoutingIndex, out: HashParts): Partition | null {
  const info = index.table(plan.table);
  if (!info || info.keyspaceId === undefined || info.keyType === undefined) return null;
  const ks = info.keyspaceId;
  let found: Partition | null = null;
  let several = false;
  try {
    for (const ref of plan.keys) {
      forEachKeyHash(ref, info, literals, bound, (h) => {
        const p = index.partitionForParts(ks, h.hi, h.lo);
        if (found === null) {
          found = p;
          out.hi = h.hi;
          out.lo = h.lo;
        } else if (found !== p) several = true;
      });
    }
  } catch {
    return null;
  }
  return several ? null : found;
}

/** The text of a plan's first key value (for key samples), or null. */
export function firstKeyText(plan: Extract<StatementPlan, { kind: 'keyed' }>, literals: readonly string[], bound: BoundParams | null): string | null {
  const ref = plan.keys[0];
  if (!ref || ref.array) return null;
  if ('literal' in ref) return literals[ref.literal] ?? null;
  const buf = bound?.values?.[ref.param - 1];
  if (!buf) return null;
  return formatOf(bound?.formats, ref.param - 1) === 0 ? buf.toString('utf8') : `\\x${buf.toString('hex')}`;
}
