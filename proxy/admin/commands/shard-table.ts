// SHARD TABLE t BY (col) [PARTITIONS n] [COLOCATE WITH other | ALONE]: declare a sharded table.
import { normalizeKeyType } from '../../../config/config-file.js';
import { ConfigError } from '../../../config/config-file.js';
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { identifier } from './identifiers.js';

export const shardTable: AdminCommand = {
  syntax: 'SHARD TABLE t BY (col) [PARTITIONS n] [COLOCATE WITH other | ALONE]',
  description: 'declare a sharded table (it must exist, created through the proxy, and be empty)',
  pattern: /^shard\s+table\s+(\S+)\s+by\s*\(\s*([^)\s]+)\s*\)(?:\s+partitions\s+(\S+))?(?:\s+(?:colocate\s+with\s+(\S+)|(alone)))?$/i,
  async run({ proxy, backend }, m) {
    const name = identifier(m[1]!, 'table name');
    const column = identifier(m[2]!, 'column name');
    let partitions: number | undefined;
    if (m[3] !== undefined) {
      partitions = Number(m[3]);
      if (!Number.isInteger(partitions) || partitions < 1 || partitions > 4096) {
        throw new AdminError('BAD_PARTITIONS', `PARTITIONS must be an integer between 1 and 4096, got ${m[3]}`, { sqlstate: '22023' });
      }
    }
    const colocateWith = m[4] === undefined ? undefined : identifier(m[4], 'table name');
    const shards = proxy.routingTable().shards.filter((s) => s.state === 'active' || s.state === 'draining');
    // The key's type decides the hash, so read it from the table itself, on every shard.
    const types = new Set<string>();
    for (const s of shards) {
      const rows = await backend.queryShard(s.id,
        `SELECT format_type(a.atttypid, NULL) AS type FROM pg_attribute a
          WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, [name, column]);
      const exists = await backend.queryShard(s.id, 'SELECT to_regclass($1) IS NOT NULL AS ok', [name]);
      if (!exists[0]?.ok) {
        throw new AdminError('UNKNOWN_TABLE', `relation "${name}" does not exist on shard ${s.id}`, {
          sqlstate: '42P01', hint: 'create the table through the proxy first: DDL goes to every shard',
        });
      }
      if (rows.length === 0) throw new AdminError('UNKNOWN_COLUMN', `column "${column}" of relation "${name}" does not exist`, { sqlstate: '42703' });
      types.add(String(rows[0]!.type));
    }
    if (types.size > 1) {
      throw new AdminError('SCHEMA_MISMATCH', `column "${column}" of "${name}" has different types on different shards: ${[...types].join(', ')}`, { sqlstate: '42804' });
    }
    const typeName = [...types][0]!.replace(/\(.*\)$/, '');
    let keyType;
    try {
      keyType = normalizeKeyType(typeName, 'key');
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new AdminError('BAD_KEY_TYPE', `cannot shard by "${column}" of type ${typeName}: the key must be smallint, integer, bigint, text, varchar or uuid`, { sqlstate: '42804' });
      }
      throw err;
    }
    for (const s of shards) {
      const rows = await backend.queryShard(s.id, `SELECT EXISTS (SELECT 1 FROM ${quoteName(name)}) AS has_rows`);
      if (rows[0]?.has_rows) {
        throw new AdminError('TABLE_NOT_EMPTY', `table "${name}" already holds rows on shard ${s.id}`, {
          sqlstate: '0A000',
          detail: 'sharding a table that already has data means moving its rows between servers, which needs the live mover; this version only shards empty tables',
          hint: 'create the table empty, SHARD TABLE it, then load the rows through the proxy',
        });
      }
    }
    const version = await backend.catalog.shardTable(name, column, keyType, {
      ...(partitions !== undefined ? { partitions } : {}),
      ...(colocateWith !== undefined ? { colocateWith } : {}),
      ...(m[5] ? { alone: true } : {}),
    });
    if (version === null) throw new AdminError('ALREADY_SHARDED', `table "${name}" is already sharded by (${column})`, { sqlstate: '42710' });
    await backend.reload();
    return { tag: 'SHARD TABLE', notices: [`routing version ${version}: ${name} sharded by ${column} (${keyType})`] };
  },
};

function quoteName(name: string): string {
  return name.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}
