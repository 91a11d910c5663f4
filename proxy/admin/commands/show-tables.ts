// SHOW TABLES: declared sharded and reference tables with key column, type and key space.
import { table, type AdminCommand } from '../result.js';

export const showTables: AdminCommand = {
  syntax: 'SHOW TABLES',
  description: 'sharded and reference tables',
  pattern: /^show\s+tables$/i,
  async run({ proxy }) {
    const index = proxy.routingTable();
    const ksName = (id: number) => index.keyspaces.find((k) => k.id === id)?.name ?? String(id);
    return table(['name', 'kind', 'key_column', 'key_type', 'keyspace'], index.tables.map((t) => [
      t.name, t.kind, t.keyColumn ?? null, t.keyType ?? null, t.keyspaceId === undefined ? null : ksName(t.keyspaceId),
    ]));
  },
};
