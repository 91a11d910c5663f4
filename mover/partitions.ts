// Partition rows as the mover reads them: locked inside a catalog transaction (split/merge live in config/catalog.ts).
import type pg from 'pg';

import { unknownPartition } from './errors.js';

export interface PartitionRow {
  id: number;
  keyspaceId: number;
  lo: bigint;
  hi: bigint;
  shardId: number;
  state: string;
}

export async function lockPartition(c: pg.ClientBase, id: number): Promise<PartitionRow> {
  if (!Number.isSafeInteger(id)) throw unknownPartition(id);
  const { rows } = await c.query<{ id: number; keyspace_id: number; lo: string; hi: string; shard_id: number; state: string }>(
    'SELECT id, keyspace_id, lo::text AS lo, hi::text AS hi, shard_id, state FROM pgtide.partitions WHERE id = $1 FOR UPDATE', [id]);
  const r = rows[0];
  if (!r) throw unknownPartition(id);
  return { id: r.id, keyspaceId: r.keyspace_id, lo: BigInt(r.lo), hi: BigInt(r.hi), shardId: r.shard_id, state: r.state };
}

