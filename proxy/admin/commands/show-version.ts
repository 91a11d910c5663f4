// SHOW VERSION: pgtide's version, the catalog schema version and the routing version served.
import { table, type AdminCommand } from '../result.js';

export const showVersion: AdminCommand = {
  syntax: 'SHOW VERSION',
  description: 'pgtide version, catalog schema version, routing version',
  pattern: /^show\s+version$/i,
  async run({ proxy, backend }) {
    return table(['pgtide', 'catalog_schema', 'routing_version', 'server_version'], [[
      backend.version, await backend.catalog.schemaVersion(), proxy.routing().version, proxy.serverParams.get('server_version') ?? null,
    ]]);
  },
};
