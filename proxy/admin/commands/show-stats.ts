// SHOW STATS: totals since start: statements, transactions, errors, bytes, fan-outs, per shard.
import { table, type AdminCommand } from '../result.js';

export const showStats: AdminCommand = {
  syntax: 'SHOW STATS',
  description: 'totals since start: statements, transactions, errors, bytes, statements per shard',
  pattern: /^show\s+stats$/i,
  async run({ proxy }) {
    const c = proxy.counters;
    const rows: (string | number)[][] = [
      ['uptime_s', Math.round((Date.now() - proxy.startedAt) / 1000)],
      ['queries', c.queries],
      ['transactions', c.transactions],
      ['errors', c.errors],
      ['bytes_in', c.bytesIn],
      ['bytes_out', c.bytesOut],
      ['scatter_statements', c.scatter],
      ['broadcast_statements', c.broadcast],
      ['pipelined_statements', c.pipelined],
      ['clients', proxy.sessions.size],
      ['routing_version', proxy.routing().version],
      ['route_cache_entries', proxy.router.size],
      ['prepared_statements', proxy.statements.size],
    ];
    for (const [shard, n] of [...c.perShard].sort((a, b) => a[0] - b[0])) rows.push([`shard_${shard}_statements`, n]);
    return table(['name', 'value'], rows);
  },
};
