// SHOW PROXIES: every proxy process of the cluster: address, routing version, heartbeat, state, leader,
// and the cutover holds in progress (the mover's proxy, the proxies that acked, those it waits for).
import { table, type AdminCommand } from '../result.js';

export const showProxies: AdminCommand = {
  syntax: 'SHOW PROXIES',
  description: 'proxy processes: address, routing version acknowledged, last heartbeat, state, leader, cutover holds (mover / acked / waiting)',
  pattern: /^show\s+proxies$/i,
  async run({ proxy, backend }) {
    const member = backend.member;
    try {
      member.assertCatalogReachable();
      const { rows } = await backend.catalog.pool.query<{ id: number; address: string; pid: number; routing_version: string; last_heartbeat: Date; state: string; leader: boolean; started_at: Date; holds: string | null }>(
        `SELECT p.id, p.address, p.pid, p.routing_version, p.last_heartbeat, p.state, p.leader, p.started_at,
                (SELECT string_agg('job ' || h.job_id || CASE WHEN h.proxy_id = p.id THEN ' (mover)' WHEN a.token = h.token THEN ' (acked)' ELSE ' (waiting)' END, ', ' ORDER BY h.job_id)
                   FROM pgtide.holds h LEFT JOIN pgtide.hold_acks a ON a.job_id = h.job_id AND a.proxy_id = p.id
                  WHERE h.deadline > now()) AS holds
           FROM pgtide.proxies p WHERE p.state <> 'stopped' ORDER BY p.id`);
      return table(['id', 'address', 'pid', 'routing_version', 'last_heartbeat', 'state', 'leader', 'started_at', 'this', 'holds'], rows.map((r) => [
        r.id, r.address, r.pid, r.routing_version, r.last_heartbeat.toISOString(), r.state, r.leader, r.started_at.toISOString(), r.id === member.proxyId, r.holds,
      ]));
    } catch {
      // The catalog is away: say what this proxy knows about itself.
      return {
        columns: ['id', 'address', 'pid', 'routing_version', 'last_heartbeat', 'state', 'leader', 'started_at', 'this', 'holds'],
        rows: [[member.proxyId, '(this proxy)', process.pid, proxy.routing().version, new Date(member.lastHeartbeatOk).toISOString(), 'degraded', false, new Date(proxy.startedAt).toISOString(), true,
          proxy.holds.list().map((h) => `job ${h.jobId} (held here)`).join(', ') || null]],
        notices: ['the catalog is unreachable: showing this proxy only'],
      };
    }
  },
};
