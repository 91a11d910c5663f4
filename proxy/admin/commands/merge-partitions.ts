// MERGE PARTITIONS p, q: join two adjacent partitions on the same shard (metadata only), on every proxy.
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { announce } from './announce.js';

export const mergePartitions: AdminCommand = {
  syntax: 'MERGE PARTITIONS p, q',
  description: 'join two adjacent partitions that live on the same shard',
  pattern: /^merge\s+partitions\s+(\S+?)\s*,\s*(\S+)$/i,
  async run(ctx, m) {
    const a = Number(m[1]);
    const b = Number(m[2]);
    if (!Number.isInteger(a) || !Number.isInteger(b) || a <= 0 || b <= 0) {
      throw new AdminError('BAD_PARTITION', `partition ids must be positive integers, got ${m[1]}, ${m[2]}`, { sqlstate: '22023' });
    }
    ctx.backend.member.assertCatalogReachable();
    const r = await ctx.backend.catalog.mergePartitions(a, b);
    const notices = await announce(ctx, r.version);
    return { tag: 'MERGE PARTITIONS', notices: [`routing version ${r.version}: partition ${r.removed} merged into ${r.kept}`, ...notices] };
  },
};
