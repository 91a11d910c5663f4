// Routing-table lookups: table name → TableInfo, key → hash → partition → shard, by binary search.
//
// A RoutingIndex is built once per routing version and is immutable, so the hot path may keep a
// reference without locking. Each key space's partitions are sorted by `lo` and their lower
// bounds kept twice: as bigints (for callers holding a bigint hash) and as (hi: int32, lo:
// uint32) pairs in typed arrays, so the per-query lookup after `hashKeyParts` needs no BigInt.
import { PgtideError } from './errors.js';
import { hashKeyParts, hashToParts, type HashParts } from './hash.js';
import { HASH_END, HASH_MIN, type Partition, type RoutingTable, type Shard, type StrayRange, type TableInfo } from './types.js';

/** The routing table itself is inconsistent (gap, overlap, unknown key space): a catalog bug. */
export class RoutingTableError extends PgtideError {
  constructor(message: string) {
    super('ROUTING_TABLE_INVALID', message, { sqlstate: 'XX000' });
  }
}

interface KeySpaceIndex {
  partitions: Partition[];
  los: bigint[];
  loHi: Int32Array;
  loLo: Uint32Array;
}

/** Strip one level of double quotes ("" → ") or lower-case an unquoted identifier. */
function normalizeIdent(part: string): string {
  const p = part.trim();
  if (p.length >= 2 && p.startsWith('"') && p.endsWith('"')) return p.slice(1, -1).replace(/""/g, '"');
  return p.toLowerCase();
}

/** Split a possibly qualified name on dots that are outside double quotes. */
function splitQualified(name: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  return parts;
}

/**
 * The catalog's spelling of a table name as written in SQL: unquoted identifiers fold to lower
 * case, quoted ones keep theirs, and the implied schema "public" is dropped.
 */
export function canonicalTableName(written: string): string {
  const parts = splitQualified(written).map(normalizeIdent);
  if (parts.length === 2 && parts[0] === 'public') return parts[1]!;
  return parts.join('.');
}

/** The canonical name of a (schema, relation) pair as the parser reports it (already folded). */
export function relationKey(schema: string | undefined, relname: string): string {
  return schema === undefined || schema === '' || schema === 'public' ? relname : `${schema}.${relname}`;
}

/** Three-way compare of two (signed hi, unsigned lo) 64-bit values. */
function cmpParts(ahi: number, alo: number, bhi: number, blo: number): number {
  if (ahi !== bhi) return ahi < bhi ? -1 : 1;
  if (alo !== blo) return alo < blo ? -1 : 1;
  return 0;
}

export class RoutingIndex {
  readonly version: number;
  readonly shards: readonly Shard[];
  /** Lowest-numbered usable shard: home of unsharded tables and of statements that touch none. */
  readonly primaryShardId: number;
  private readonly tables = new Map<string, TableInfo>();
  private readonly keyspaces = new Map<number, KeySpaceIndex>();
  private readonly scratch: HashParts = { hi: 0, lo: 0 };
  private rr = 0;
  private readonly strays: readonly StrayRange[];
  private readonly strayCache = new Map<number, ReadonlyMap<number, readonly HashRange[]> | null>();

  constructor(table: RoutingTable) {
    this.version = table.version;
    this.shards = table.shards;
    this.strays = table.strays ?? [];
    const usable = table.shards.filter((s) => s.state === 'active' || s.state === 'draining').map((s) => s.id);
    this.primaryShardId = usable.length > 0 ? Math.min(...usable) : (table.shards[0]?.id ?? 0);
    for (const t of table.tables) this.tables.set(t.name, t);
    const byKs = new Map<number, Partition[]>();
    for (const p of table.partitions) {
      let list = byKs.get(p.keyspaceId);
      if (!list) byKs.set(p.keyspaceId, (list = []));
      list.push(p);
    }
    for (const [ks, list] of byKs) {
      list.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
      // A gap or overlap would send some key nowhere or to two owners: refuse the whole version.
      let expect = HASH_MIN;
      for (const p of list) {
        if (p.lo !== expect) throw new RoutingTableError(`key space ${ks}: partition ${p.id} starts at ${p.lo}, expected ${expect}`);
        if (p.hi <= p.lo) throw new RoutingTableError(`key space ${ks}: partition ${p.id} is empty or inverted`);
        expect = p.hi;
      }
      if (expect !== HASH_END) throw new RoutingTableError(`key space ${ks}: partitions end at ${expect}, not at 2^63`);
      const loHi = new Int32Array(list.length);
      const loLo = new Uint32Array(list.length);
      const parts: HashParts = { hi: 0, lo: 0 };
      list.forEach((p, i) => {
        hashToParts(p.lo, parts);
        loHi[i] = parts.hi;
        loLo[i] = parts.lo;
      });
      this.keyspaces.set(ks, { partitions: list, los: list.map((p) => p.lo), loHi, loLo });
    }
  }

  /** The table as written in SQL (`Accounts`, `public.accounts`, `"Odd"."Name"`), if declared. */
  tableInfo(name: string): TableInfo | undefined {
    return this.tables.get(name) ?? this.tables.get(canonicalTableName(name));
  }

  /** SchemaView: the router passes names already canonical (see relationKey). */
  table(name: string): TableInfo | undefined {
    return this.tables.get(name);
  }

  private keyspace(keyspaceId: number): KeySpaceIndex {
    const ks = this.keyspaces.get(keyspaceId);
    if (!ks) throw new RoutingTableError(`key space ${keyspaceId} has no partitions`);
    return ks;
  }

  /** The partition of `keyspaceId` whose [lo, hi) holds `hash`. */
  partitionFor(keyspaceId: number, hash: bigint): Partition {
    const ks = this.keyspace(keyspaceId);
    return ks.partitions[partitionIndexFor(hash, ks.los)]!;
  }

  /** partitionFor with the hash as (signed hi, unsigned lo) halves: no BigInt on the hot path. */
  partitionForParts(keyspaceId: number, hi: number, lo: number): Partition {
    const ks = this.keyspace(keyspaceId);
    const { loHi, loLo } = ks;
    // Last partition whose lo <= hash; the first lo is HASH_MIN so the answer always exists.
    let a = 0;
    let b = loHi.length - 1;
    while (a < b) {
      const m = (a + b + 1) >>> 1;
      if (cmpParts(loHi[m]!, loLo[m]!, hi, lo) <= 0) a = m;
      else b = m - 1;
    }
    return ks.partitions[a]!;
  }

  /** The partition owning one key value (text form, number or bigint) of a sharded table. */
  partitionForKey(table: TableInfo, value: string | number | bigint): Partition {
    if (table.kind !== 'sharded' || table.keyType === undefined || table.keyspaceId === undefined) {
      throw new RoutingTableError(`table ${table.name} is not sharded`);
    }
    const h = hashKeyParts(table.keyType, value, this.scratch);
    return this.partitionForParts(table.keyspaceId, h.hi, h.lo);
  }

  /** The shard owning one key value of a sharded table. */
  shardForKey(table: TableInfo, value: string | number | bigint): number {
    return this.partitionForKey(table, value).shardId;
  }

  /**
   * Every shard that may hold data (active or draining), ascending, plus joining shards: they own
   * nothing yet but must receive DDL and reference-table writes while their copies are made.
   */
  dataShardIds(): number[] {
    return this.shards.filter((s) => s.state === 'active' || s.state === 'draining' || s.state === 'joining').map((s) => s.id).sort((a, b) => a - b);
  }

  /** Some shard may hold rows it does not own (a move is under way): fan-outs must filter them. */
  get hasStrays(): boolean {
    return this.strays.length > 0;
  }

  /**
   * Per key space, the hash ranges whose rows `shardId` may hold but does not own (sorted,
   * adjacent ranges merged), or null when it holds none. Only the parts of a move's range owned
   * by *other* shards are listed, so filtering them out never hides a row the shard owns.
   */
  strayRanges(shardId: number): ReadonlyMap<number, readonly HashRange[]> | null {
    if (this.strays.length === 0) return null;
    const cached = this.strayCache.get(shardId);
    if (cached !== undefined) return cached;
    const out = new Map<number, HashRange[]>();
    for (const s of this.strays) {
      if (s.shardId !== shardId) continue;
      const ks = this.keyspaces.get(s.keyspaceId);
      if (!ks) continue;
      for (const p of ks.partitions) {
        if (p.shardId === shardId || p.hi <= s.lo || p.lo >= s.hi) continue;
        let list = out.get(s.keyspaceId);
        if (!list) out.set(s.keyspaceId, (list = []));
        list.push({ lo: p.lo > s.lo ? p.lo : s.lo, hi: p.hi < s.hi ? p.hi : s.hi });
      }
    }
    for (const [ks, list] of out) out.set(ks, mergeRanges(list));
    const result = out.size > 0 ? out : null;
    this.strayCache.set(shardId, result);
    return result;
  }

  /** The hash ranges of `keyspaceId` that `shardId` owns (sorted, adjacent ranges merged). */
  ownedRanges(keyspaceId: number, shardId: number): HashRange[] {
    const ks = this.keyspaces.get(keyspaceId);
    if (!ks) return [];
    return mergeRanges(ks.partitions.filter((p) => p.shardId === shardId).map((p) => ({ lo: p.lo, hi: p.hi })));
  }

  /** One shard for a reference-table read, rotating so reads spread over the copies. */
  anyShard(): number {
    const ids = this.shards.filter((s) => s.state === 'active');
    if (ids.length === 0) return this.primaryShardId;
    this.rr = (this.rr + 1) % ids.length;
    return ids[this.rr]!.id;
  }
}

/** A half-open hash range [lo, hi); hi may be 2^63. */
export interface HashRange {
  lo: bigint;
  hi: bigint;
}

/** Sort ranges and merge the overlapping or adjacent ones. */
export function mergeRanges(ranges: readonly HashRange[]): HashRange[] {
  const sorted = [...ranges].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: HashRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi) {
      if (r.hi > last.hi) last.hi = r.hi;
    } else {
      out.push({ lo: r.lo, hi: r.hi });
    }
  }
  return out;
}

/** Index of the range in `sortedLos` (ascending lower bounds, first = HASH_MIN) holding `hash`. */
export function partitionIndexFor(hash: bigint, sortedLos: readonly bigint[]): number {
  let a = 0;
  let b = sortedLos.length - 1;
  while (a < b) {
    const m = (a + b + 1) >>> 1;
    if (sortedLos[m]! <= hash) a = m;
    else b = m - 1;
  }
  return a;
}

/**
 * Cut a key space's hash space into `count` equal ranges and assign them to `shardIds` in
 * contiguous blocks (shard 0 gets the first count/n ranges, and so on) rather than round-robin:
 * the hash already spreads keys evenly, and neighbours on one shard can later be merged without
 * moving data, while a new shard can take over a contiguous run of ranges.
 */
export function defaultPartitions(keyspaceId: number, count: number, shardIds: readonly number[]): { keyspaceId: number; lo: bigint; hi: bigint; shardId: number }[] {
  if (!Number.isInteger(count) || count < 1) throw new RoutingTableError(`partition count must be a positive integer, got ${count}`);
  if (shardIds.length === 0) throw new RoutingTableError('no shards to place partitions on');
  const span = HASH_END - HASH_MIN;
  const n = BigInt(count);
  const out: { keyspaceId: number; lo: bigint; hi: bigint; shardId: number }[] = [];
  for (let i = 0; i < count; i++) {
    const lo = HASH_MIN + (span * BigInt(i)) / n;
    const hi = i === count - 1 ? HASH_END : HASH_MIN + (span * BigInt(i + 1)) / n;
    out.push({ keyspaceId, lo, hi, shardId: shardIds[Math.floor((i * shardIds.length) / count)]! });
  }
  return out;
}
