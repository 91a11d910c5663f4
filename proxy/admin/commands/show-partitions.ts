// SHOW PARTITIONS: one row per partition: key space, hash range [lo, hi), owner shard, state, tables.
import { table, type AdminCommand } from '../result.js';

export const showPartitions: AdminCommand = {
  syntax: 'SHOW PARTITIONS',
  description: 'partitions with key space, hash range, owner shard, state and tables',
  pattern: /^show\s+partitions$/i,
  async run({ proxy }) {
    const index = proxy.routingTable();
    const ksName = (id: number) => index.keyspaces.find((k) => k.id === id)?.name ?? String(id);
    const tablesByKs = new Map<number, string[]>();
    for (const t of index.tables) {
      if (t.keyspaceId === undefined) continue;
      let l = tablesByKs.get(t.keyspaceId);
      if (!l) tablesByKs.set(t.keyspaceId, (l = []));
      l.push(t.name);
    }
    return table(['id', 'keyspace', 'lo', 'hi', 'shard', 'state', 'tables'], index.partitions.map((p) => [
      p.id, ksName(p.keyspaceId), p.lo.toString(), p.hi.toString(), p.shardId, p.state, (tablesByKs.get(p.keyspaceId) ?? []).join(', '),
    ]));
  },
};
