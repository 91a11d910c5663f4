// SPLIT PARTITION p [AT hash]: cut a partition in two on the same shard (metadata only), on every proxy.
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { announce } from './announce.js';

export const splitPartition: AdminCommand = {
  syntax: 'SPLIT PARTITION p [AT hash] [MOVE TO SHARD n]',
  description: 'cut a partition in two at a hash (default: where its sampled load halves); with MOVE TO, the upper half moves live',
  pattern: /^split\s+partition\s+(\S+)(?:\s+at\s+(\S+))?(?:\s+move\s+to\s+shard\s+(\S+))?$/i,
  async run(ctx, m) {
    const id = Number(m[1]);
    if (!Number.isInteger(id) || id <= 0) throw new AdminError('BAD_PARTITION', `partition id must be a positive integer, got ${m[1]}`, { sqlstate: '22023' });
    let at: bigint | undefined;
    if (m[2] !== undefined) {
      try {
        at = BigInt(m[2]);
      } catch {
        throw new AdminError('BAD_SPLIT_POINT', `AT needs a signed 64-bit hash value, got ${m[2]}`, { sqlstate: '22023' });
      }
    }
    ctx.backend.member.assertCatalogReachable();
    if (m[3] !== undefined) {
      const shard = Number(m[3]);
      if (!Number.isInteger(shard) || shard < 0) throw new AdminError('BAD_SHARD', `shard id must be a non-negative integer, got ${m[3]}`, { sqlstate: '22023' });
      if (!ctx.backend.jobs) throw new AdminError('NO_MOVER', 'live moves are not available in this process', { sqlstate: '0A000' });
      const r = await ctx.backend.jobs.split(id, at, shard);
      const notices = await announce(ctx, r.version);
      return { tag: 'SPLIT PARTITION', notices: [`routing version ${r.version}: partition ${r.left} ends at ${r.at}; partition ${r.right} starts there and moves to shard ${shard} as job ${r.jobId}`, ...notices] };
    }
    const r = await ctx.backend.catalog.splitPartition(id, at);
    const notices = await announce(ctx, r.version);
    return { tag: 'SPLIT PARTITION', notices: [`routing version ${r.version}: partition ${r.left} now ends at ${r.at}; new partition ${r.right} starts there`, ...notices] };
  },
};
