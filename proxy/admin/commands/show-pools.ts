// SHOW POOLS: per shard pool size, open, idle, active and waiting counts.
import { table, type AdminCommand } from '../result.js';

export const showPools: AdminCommand = {
  syntax: 'SHOW POOLS',
  description: 'pools per shard: mode, size, open, idle, active, waiting clients',
  pattern: /^show\s+pools$/i,
  async run({ proxy }) {
    return table(['shard', 'mode', 'size', 'open', 'idle', 'active', 'waiting', 'connecting', 'acquired', 'last_error'], proxy.pools().map((p) => {
      const s = p.stats();
      return [s.shard, proxy.poolMode, s.size, s.open, s.idle, s.active, s.waiting, s.connecting, s.acquired, s.lastError];
    }));
  },
};
