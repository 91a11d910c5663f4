// SHOW CLIENTS: connected application clients with their state.
import { table, type AdminCommand } from '../result.js';

export const showClients: AdminCommand = {
  syntax: 'SHOW CLIENTS',
  description: 'connected application clients',
  pattern: /^show\s+clients$/i,
  async run({ proxy }) {
    return table(['pid', 'user', 'database', 'remote', 'state', 'application_name', 'connected_at', 'linked_shards'], [...proxy.sessions.values()].map((s) => [
      s.pid, s.user, s.database, s.remote, s.state(), s.applicationName, new Date(s.connectedAt).toISOString(), s.linkedServers().map((l) => l.shardId).join(', '),
    ]));
  },
};
