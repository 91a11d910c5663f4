// REFERENCE TABLE t: declare a small table copied to every shard (reads from one, writes to all).
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { identifier } from './identifiers.js';

export const referenceTable: AdminCommand = {
  syntax: 'REFERENCE TABLE t',
  description: 'declare a table copied to every shard',
  pattern: /^reference\s+table\s+(\S+)$/i,
  async run({ backend }, m) {
    const name = identifier(m[1]!, 'table name');
    const version = await backend.catalog.referenceTable(name);
    if (version === null) throw new AdminError('ALREADY_REFERENCE', `table "${name}" is already a reference table`, { sqlstate: '42710' });
    await backend.reload();
    return { tag: 'REFERENCE TABLE', notices: [`routing version ${version}: ${name} is a reference table`] };
  },
};
