// SHOW SHARDS: one row per shard with its URL (password hidden), state and pool use.
import { redactUrl } from '../../../config/config-file.js';
import { table, type AdminCommand } from '../result.js';

export const showShards: AdminCommand = {
  syntax: 'SHOW SHARDS',
  description: 'shards with URL, state, partitions owned and pool use',
  pattern: /^show\s+shards$/i,
  async run({ proxy }) {
    const index = proxy.routingTable();
    const partitionCounts = new Map<number, number>();
    for (const p of index.partitions) partitionCounts.set(p.shardId, (partitionCounts.get(p.shardId) ?? 0) + 1);
    return table(['id', 'url', 'state', 'partitions', 'pool_open', 'pool_idle', 'pool_waiting', 'last_error'], index.shards.map((s) => {
      const pool = proxy.pools().find((p) => p.shardId === s.id)?.stats();
      return [s.id, redactUrl(s.url), s.state, partitionCounts.get(s.id) ?? 0, pool?.open ?? 0, pool?.idle ?? 0, pool?.waiting ?? 0, pool?.lastError ?? null];
    }));
  },
};
