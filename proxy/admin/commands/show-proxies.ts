// SHOW PROXIES: every proxy process of the cluster: address, routing version, heartbeat, state, leader.
import { table, type AdminCommand } from '../result.js';

export const showProxies: AdminCommand = {
  syntax: 'SHOW PROXIES',
  description: 'proxy processes: address, routing version acknowledged, last heartbeat, state, leader',
  pattern: /^show\s+proxies$/i,
  async run({ proxy, backend }) {
    const member = backend.member;
    try {
      member.assertCatalogReachable();
      const { rows } = await backend.catalog.pool.query<{ id: number; address: string; pid: number; routing_version: string; last_heartbeat: Date; state: string; leader: boolean; started_at: Date }>(
        "SELECT id, address, pid, routing_version, last_heartbeat, state, leader, started_at FROM pgtide.proxies WHERE state <> 'stopped' ORDER BY id");
      return table(['id', 'address', 'pid', 'routing_version', 'last_heartbeat', 'state', 'leader', 'started_at', 'this'], rows.map((r) => [
        r.id, r.address, r.pid, r.routing_version, r.last_heartbeat.toISOString(), r.state, r.leader, r.started_at.toISOString(), r.id === member.proxyId,
      ]));
    } catch {
      // The catalog is away: say what this proxy knows about itself.
      return {
        columns: ['id', 'address', 'pid', 'routing_version', 'last_heartbeat', 'state', 'leader', 'started_at', 'this'],
        rows: [[member.proxyId, '(this proxy)', process.pid, proxy.routing().version, new Date(member.lastHeartbeatOk).toISOString(), 'degraded', false, new Date(proxy.startedAt).toISOString(), true]],
        notices: ['the catalog is unreachable: showing this proxy only'],
      };
    }
  },
};
