// Shared routing table for router tests: 4 shards, an int and a text key space, a reference table.
import { defaultPartitions, RoutingIndex } from '../../../config/routing.js';
import type { RoutingTable } from '../../../config/types.js';

export function testRoutingTable(): RoutingTable {
  return {
    version: 1,
    shards: [0, 1, 2, 3].map((id) => ({ id, url: `postgres://shard${id}`, state: 'active' as const })),
    keyspaces: [
      { id: 1, name: 'ints', family: 'int' },
      { id: 2, name: 'texts', family: 'text' },
      { id: 3, name: 'uuids', family: 'uuid' },
    ],
    tables: [
      { name: 'pgbench_accounts', kind: 'sharded', keyColumn: 'aid', keyType: 'int4', keyspaceId: 1 },
      { name: 'customers', kind: 'sharded', keyColumn: 'id', keyType: 'int8', keyspaceId: 1 },
      { name: 'orders', kind: 'sharded', keyColumn: 'customer_id', keyType: 'int8', keyspaceId: 1 },
      { name: 'users', kind: 'sharded', keyColumn: 'email', keyType: 'text', keyspaceId: 2 },
      { name: 'sessions', kind: 'sharded', keyColumn: 'sid', keyType: 'uuid', keyspaceId: 3 },
      { name: 'app.events', kind: 'sharded', keyColumn: 'tenant', keyType: 'int2', keyspaceId: 1 },
      { name: 'countries', kind: 'reference' },
    ],
    partitions: [...defaultPartitions(1, 8, [0, 1, 2, 3]), ...defaultPartitions(2, 4, [0, 1, 2, 3]), ...defaultPartitions(3, 4, [0, 1, 2, 3])].map((p, i) => ({ ...p, id: i + 1, state: 'active' as const })),
  };
}

export function testIndex(): RoutingIndex {
  return new RoutingIndex(testRoutingTable());
}
