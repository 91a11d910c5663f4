// After a routing change: install it here, then wait until every live proxy acknowledged it.
import type { AdminContext } from '../admin-session.js';

export async function announce(ctx: AdminContext, version: number): Promise<string[]> {
  await ctx.backend.reload();
  const behind = await ctx.backend.member.waitForAcks(version, 5000);
  if (behind.length === 0) return ['every live proxy routes by it'];
  return [`not yet acknowledged by ${behind.map((p) => `proxy ${p.id} (${p.address}, at version ${p.routing_version})`).join(', ')}; they will be marked dead if their heartbeat lapses`];
}
