// RELOAD: re-read the routing table from the catalog and serve it.
import type { AdminCommand } from '../result.js';

export const reload: AdminCommand = {
  syntax: 'RELOAD',
  description: 're-read the routing table from the catalog',
  pattern: /^reload$/i,
  async run({ backend }) {
    const t = await backend.reload();
    return { tag: 'RELOAD', notices: [`routing version ${t.version} installed`] };
  },
};
