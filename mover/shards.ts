// Connections to shards by id (URLs from the catalog), and table introspection: columns, DDL, schema comparison.
import pg from 'pg';
import type { Catalog } from '../config/catalog.js';
import type { KeyType } from '../config/types.js';
import { MoverError, unknownShard } from './errors.js';
import { quoteIdent, quoteTable } from './sql.js';

/** A sharded table of the key space being moved, as the mover needs it. */
export interface MoveTable {
  name: string;
  keyColumn: string;
  keyType: KeyType;
  /** Columns copied, in the source's attnum order (generated columns excluded). */
  columns: string[];
  /** Position of the key column in `columns`. */
  keyIndex: number;
  /** A unique index on the key column alone: a chunk may end after exactly n rows (no key is split). */
  uniqueKey?: boolean;
}

export interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
  default: string | null;
  generated: boolean;
}

/** Small pools per shard, kept apart from any client pool; `client()` gives a dedicated connection. */
export class ShardConnections {
  private readonly pools = new Map<number, pg.Pool>();
  private readonly urls = new Map<number, string>();

  constructor(private readonly catalog: Catalog, readonly appName = 'pgtide-mover') {}

  async url(shardId: number): Promise<string> {
    const known = this.urls.get(shardId);
    if (known) return known;
    const { rows } = await this.catalog.pool.query<{ url: string }>('SELECT url FROM pgtide.shards WHERE id = $1', [shardId]);
    if (!rows[0]) throw unknownShard(shardId);
    this.urls.set(shardId, rows[0].url);
    return rows[0].url;
  }

  async pool(shardId: number): Promise<pg.Pool> {
    let p = this.pools.get(shardId);
    if (!p) {
      p = new pg.Pool({ connectionString: await this.url(shardId), max: 3, idleTimeoutMillis: 10000, connectionTimeoutMillis: 5000, application_name: this.appName });
      p.on('error', () => {});
      this.pools.set(shardId, p);
    }
    return p;
  }

  /** A dedicated connection (the caller ends it). */
  async client(shardId: number): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: await this.url(shardId), connectionTimeoutMillis: 5000, application_name: this.appName });
    c.on('error', () => {});
    await c.connect();
    return c;
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>>(shardId: number, sql: string, params: unknown[] = []): Promise<R[]> {
    const r = await (await this.pool(shardId)).query<R>(sql, params);
    return r.rows;
  }

  /** Throws 08006 when the shard does not answer within `timeoutMs`. */
  async ping(shardId: number, timeoutMs = 3000): Promise<void> {
    const url = await this.url(shardId);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: this.appName });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
    } catch (err) {
      throw new MoverError('SHARD_DOWN', `shard ${shardId} is not reachable: ${(err as Error).message}`, { sqlstate: '08006', cause: err });
    } finally {
      await c.end().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.end()));
  }
}

export async function tableColumns(c: pg.ClientBase | pg.Pool, table: string): Promise<ColumnInfo[] | null> {
  const exists = await c.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [quoteTable(table)]);
  if (!exists.rows[0]?.ok) return null;
  const { rows } = await c.query<{ name: string; type: string; not_null: boolean; def: string | null; generated: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
            pg_get_expr(d.adbin, d.adrelid) AS def, a.attgenerated::text AS generated
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [quoteTable(table)]);
  return rows.map((r) => ({ name: r.name, type: r.type, notNull: r.not_null, default: r.def, generated: r.generated !== '' }));
}

/** Whether `table` has a unique index on `column` alone (no expression, no predicate). */
export async function hasUniqueIndexOn(c: pg.ClientBase | pg.Pool, table: string, column: string): Promise<boolean> {
  const { rows } = await c.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $2) AS ok`,
    [quoteTable(table), column]);
  return rows[0]?.ok === true;
}

/** Differences between two column lists (by name and type; order may differ), empty when equal. */
export function schemaDifferences(source: ColumnInfo[], target: ColumnInfo[]): string[] {
  const out: string[] = [];
  const t = new Map(target.map((c) => [c.name, c]));
  for (const s of source) {
    const o = t.get(s.name);
    if (!o) out.push(`column ${s.name} (${s.type}) is missing on the target`);
    else if (o.type !== s.type) out.push(`column ${s.name} is ${s.type} on the source but ${o.type} on the target`);
    t.delete(s.name);
  }
  for (const extra of t.values()) out.push(`column ${extra.name} (${extra.type}) exists only on the target`);
  return out;
}

/**
 * CREATE TABLE statements that rebuild `table` as the source has it: columns with types, NOT NULL
 * and defaults (except sequence defaults: the owner of the range keeps keys it was given), primary
 * key, unique and check constraints, and other indexes.
 */
export async function tableDdl(c: pg.ClientBase | pg.Pool, table: string): Promise<string[]> {
  const cols = await tableColumns(c, table);
  if (!cols) throw new MoverError('UNKNOWN_TABLE', `relation "${table}" does not exist on the source`, { sqlstate: '42P01' });
  const defs = cols.filter((col) => !col.generated).map((col) => {
    let d = `${quoteIdent(col.name)} ${col.type}`;
    if (col.notNull) d += ' NOT NULL';
    if (col.default !== null && !/nextval\(/i.test(col.default)) d += ` DEFAULT ${col.default}`;
    return d;
  });
  const q = quoteTable(table);
  const out = [`CREATE TABLE IF NOT EXISTS ${q} (${defs.join(', ')})`];
  const cons = await c.query<{ name: string; def: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u', 'c') ORDER BY contype DESC, conname`, [q]);
  for (const r of cons.rows) out.push(`ALTER TABLE ${q} ADD CONSTRAINT ${quoteIdent(r.name)} ${r.def}`);
  const idx = await c.query<{ def: string }>(
    `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
      WHERE i.indrelid = to_regclass($1) AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`, [q]);
  for (const r of idx.rows) out.push(r.def);
  return out;
}
