// What the admin console needs for shard-level operations (ADD/DRAIN/REMOVE/ALTER SHARD, VERIFY PARTITION); the composition root supplies it.
import { AdminError, type AdminContext } from './admin-session.js';

export interface ShardOpsBackend {
  addShard(url: string | undefined): Promise<{ shardId: number; url: string; version: number; notes: string[] }>;
  drainShard(id: number): Promise<{ shardId: number; version: number | null; jobs: { jobId: number; partitionId: number; targetShard: number; bytes: number }[]; notes: string[] }>;
  removeShard(id: number): Promise<{ version: number; notes: string[] }>;
  setMaxBytes(id: number, maxBytes: number | null): Promise<{ previous: number | null }>;
  verifyPartition(id: number): Promise<{
    ok: boolean;
    strayRows: number;
    jobId: number | null;
    rows: { table: string; shard: number; role: string; rows: number | null; checksum: string | null; result: string }[];
    notes: string[];
  }>;
}

/** This proxy's shard operations, or 0A000 when the process runs without the mover. */
export function shardOpsOf(ctx: AdminContext): ShardOpsBackend {
  const s = ctx.backend.shardOps;
  if (!s) throw new AdminError('NO_SHARD_OPS', 'shard operations are not available in this process (it runs without the mover)', { sqlstate: '0A000' });
  ctx.backend.member.assertCatalogReachable();
  return s;
}
