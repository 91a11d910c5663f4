// Shared data-model types: shards, key spaces, tables, partitions and the routing table.

/** Column types a table may be sharded by. int2/int4 hash as int8; varchar hashes as text. */
export type KeyType = 'int2' | 'int4' | 'int8' | 'text' | 'varchar' | 'uuid';

/** The family of a key type: tables whose keys share a family may share a key space. */
export type KeyFamily = 'int' | 'text' | 'uuid';

export function keyFamily(t: KeyType): KeyFamily {
  switch (t) {
    case 'int2': case 'int4': case 'int8': return 'int';
    case 'text': case 'varchar': return 'text';
    case 'uuid': return 'uuid';
  }
}

/** Smallest and one-past-largest value of the signed 64-bit hash space. */
export const HASH_MIN = -(2n ** 63n);
export const HASH_END = 2n ** 63n;

/**
 * `joining`: registered by ADD SHARD, receives broadcasts (DDL, reference-table writes) but no
 * reads until its reference tables are copied. `draining`: still serves, never receives data.
 */
export type ShardState = 'active' | 'draining' | 'down' | 'removed' | 'joining';

export interface Shard {
  id: number;
  /** postgres://user:password@host:port/db of the shard's application database. */
  url: string;
  state: ShardState;
}

export interface KeySpace {
  id: number;
  name: string;
  family: KeyFamily;
}

export type PartitionState = 'active' | 'moving' | 'splitting' | 'merging';

/** A contiguous range [lo, hi) of one key space's hash space, owned by one shard. */
export interface Partition {
  id: number;
  keyspaceId: number;
  lo: bigint;
  hi: bigint;
  shardId: number;
  state: PartitionState;
}

export type TableKind = 'sharded' | 'reference';

export interface TableInfo {
  /** Lower-case table name, unqualified (schema "public" is implied) or "schema.table". */
  name: string;
  kind: TableKind;
  keyColumn?: string;
  keyType?: KeyType;
  keyspaceId?: number;
}

/**
 * A hash range whose rows `shardId` may hold without owning them all: an unfinished move job's
 * range, listed for its source and its target (the target holds the copy from the start of the
 * copy; the source keeps its rows after the switch until cleanup deletes them). Statements that
 * run on several shards filter such a shard's rows of the range it does not own.
 */
export interface StrayRange {
  jobId: number;
  keyspaceId: number;
  lo: bigint;
  hi: bigint;
  shardId: number;
}

/** One consistent routing table: every proxy routes by exactly one version at a time. */
export interface RoutingTable {
  version: number;
  shards: Shard[];
  keyspaces: KeySpace[];
  tables: TableInfo[];
  partitions: Partition[];
  /** Shards that may hold rows they do not own (absent: none). */
  strays?: StrayRange[];
}
