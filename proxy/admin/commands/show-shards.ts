// SHOW SHARDS: one row per shard with its URL (password hidden), state and pool use.
import { redactUrl } from '../../../config/config-file.js';
import { table, type AdminCommand } from '../result.js';

export const showShards: AdminCommand = {
  syntax: 'SHOW SHARDS',
  description: 'shards with URL, state (active, joining, draining, removed), partitions owned, max_bytes and pool use',
  pattern: /^show\s+shards$/i,
  async run({ proxy, backend }) {
    const index = proxy.routingTable();
    const partitionCounts = new Map<number, number>();
    for (const p of index.partitions) partitionCounts.set(p.shardId, (partitionCounts.get(p.shardId) ?? 0) + 1);
    // Capacity is not routing state; read it from the catalog, and show the shards even when it is away.
    const maxBytes = new Map<number, string | null>();
    try {
      const { rows } = await backend.catalog.pool.query<{ id: number; max_bytes: string | null }>('SELECT id, max_bytes::text AS max_bytes FROM pgtide.shards');
      for (const r of rows) maxBytes.set(r.id, r.max_bytes);
    } catch {
      // catalog unreachable: max_bytes shows as NULL
    }
    return table(['id', 'url', 'state', 'partitions', 'max_bytes', 'pool_open', 'pool_idle', 'pool_waiting', 'last_error'], index.shards.map((s) => {
      const pool = proxy.pools().find((p) => p.shardId === s.id)?.stats();
      return [s.id, redactUrl(s.url), s.state, partitionCounts.get(s.id) ?? 0, maxBytes.get(s.id) ?? null, pool?.open ?? 0, pool?.idle ?? 0, pool?.waiting ?? 0, pool?.lastError ?? null];
    }));
  },
};
