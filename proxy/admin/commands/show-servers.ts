// SHOW SERVERS: every open server connection with its shard, backend pid and state.
import { table, type AdminCommand } from '../result.js';

export const showServers: AdminCommand = {
  syntax: 'SHOW SERVERS',
  description: 'server connections: shard, backend pid, linked or idle, transaction state',
  pattern: /^show\s+servers$/i,
  async run({ proxy }) {
    const rows: (string | number | null)[][] = [];
    for (const pool of proxy.pools()) {
      for (const s of pool.servers()) {
        rows.push([s.id, pool.shardId, `${pool.opts.host}:${pool.opts.port}`, s.conn.pid, s.sink ? 'active' : 'idle', s.txStatus, s.prepared.size, s.queries, new Date(s.lastUsed).toISOString()]);
      }
    }
    return table(['id', 'shard', 'address', 'backend_pid', 'state', 'tx', 'prepared', 'statements', 'last_used'], rows);
  },
};
