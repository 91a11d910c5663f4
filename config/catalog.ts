// The catalog: a Postgres database that is the single source of truth for shards, tables and partitions.
import pg from 'pg';
import { CatalogError } from './errors.js';
import { MIGRATIONS } from './migrations.js';
import { defaultPartitions } from './routing.js';
import { keyFamily, type KeyType, type Partition, type PartitionState, type RoutingTable, type Shard, type ShardState, type StrayRange, type TableInfo } from './types.js';

/** Advisory lock key that serializes migrations between proxies starting at once ('pgtd'). */
const MIGRATION_LOCK = 0x70677464;

export interface ShardTableOptions {
  partitions?: number;
  /** Join the key space of this (already sharded) table. */
  colocateWith?: string;
  /** A key space of its own, named after the table. */
  alone?: boolean;
  /**
   * Every partition of the new key space on this one shard (where an unsharded table's rows
   * already are, before move jobs spread them). Refused (0A000) when the key space exists.
   */
  placeAllOn?: number;
}

export class Catalog {
  private constructor(readonly pool: pg.Pool, readonly url: string) {}

  static async open(url: string): Promise<Catalog> {
    const pool = new pg.Pool({ connectionString: url, max: 4, idleTimeoutMillis: 30000, application_name: 'pgtide-catalog' });
    // An idle client that loses its server must not crash the process: the next query reports it.
    pool.on('error', () => {});
    const catalog = new Catalog(pool, url);
    await catalog.migrate();
    return catalog;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE SCHEMA IF NOT EXISTS pgtide');
      await c.query('CREATE TABLE IF NOT EXISTS pgtide.schema_migrations (version int PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      const { rows } = await c.query<{ version: number }>('SELECT version FROM pgtide.schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          await c.query(m.sql);
          await c.query('INSERT INTO pgtide.schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          throw new CatalogError('MIGRATION_FAILED', `catalog migration ${m.version} (${m.description}) failed: ${(err as Error).message}`, { sqlstate: '58000', cause: err });
        }
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
      c.release();
    }
  }

  async schemaVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ v: number | null }>('SELECT max(version) AS v FROM pgtide.schema_migrations');
    return rows[0]?.v ?? 0;
  }

  /** Register shard URLs that are not in the catalog yet (ids follow the order given). */
  async ensureShards(urls: string[]): Promise<void> {
    await this.change('shards registered', async (c) => {
      const { rows } = await c.query<{ id: number; url: string }>('SELECT id, url FROM pgtide.shards ORDER BY id');
      let changed = false;
      for (const [i, url] of urls.entries()) {
        const existing = rows.find((r) => r.id === i);
        if (!existing) {
          await c.query('INSERT INTO pgtide.shards (id, url) VALUES ($1, $2)', [i, url]);
          changed = true;
        } else if (existing.url !== url) {
          // The config (or the embedded cluster's ports) moved a shard: the config is the truth for URLs.
          await c.query('UPDATE pgtide.shards SET url = $2 WHERE id = $1', [i, url]);
          changed = true;
        }
      }
      return changed;
    });
  }

  /** The committed routing version now. */
  async routingVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ version: string }>('SELECT version FROM pgtide.routing_state');
    return Number(rows[0]!.version);
  }

  async loadRoutingTable(): Promise<RoutingTable> {
    const c = await this.pool.connect();
    try {
      // One snapshot, so the version matches the rows it describes.
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const version = await c.query<{ version: string }>('SELECT version FROM pgtide.routing_state');
      const shards = await c.query<{ id: number; url: string; state: ShardState }>('SELECT id, url, state FROM pgtide.shards ORDER BY id');
      const keyspaces = await c.query<{ id: number; name: string; family: 'int' | 'text' | 'uuid' }>('SELECT id, name, family FROM pgtide.keyspaces ORDER BY id');
      const tables = await c.query<{ name: string; kind: 'sharded' | 'reference'; key_column: string | null; key_type: KeyType | null; keyspace_id: number | null }>(
        'SELECT name, kind, key_column, key_type, keyspace_id FROM pgtide.tables ORDER BY name');
      const parts = await c.query<{ id: number; keyspace_id: number; lo: string; hi: string; shard_id: number; state: PartitionState }>(
        'SELECT p.id, p.keyspace_id, p.lo::text AS lo, p.hi::text AS hi, p.shard_id, p.state FROM pgtide.partitions p ORDER BY p.keyspace_id, p.lo');
      // Every unfinished move: its source and target may both hold the range's rows. Starting a
      // move, switching it and finishing it (done, rolled back) are routing changes, so proxies
      // learn of these ranges by the version bump like of any other change.
      const jobs = await c.query<{ id: number; keyspace_id: number; lo: string; hi: string; source_shard: number; target_shard: number }>(
        "SELECT id, keyspace_id, lo::text AS lo, hi::text AS hi, source_shard, target_shard FROM pgtide.jobs WHERE state NOT IN ('done', 'rolled_back') ORDER BY id");
      await c.query('COMMIT');
      const strays: StrayRange[] = [];
      for (const j of jobs.rows) {
        for (const shardId of [j.source_shard, j.target_shard]) strays.push({ jobId: j.id, keyspaceId: j.keyspace_id, lo: BigInt(j.lo), hi: BigInt(j.hi), shardId });
      }
      return {
        version: Number(version.rows[0]!.version),
        shards: shards.rows.map((r): Shard => ({ id: r.id, url: r.url, state: r.state })),
        keyspaces: keyspaces.rows.map((r) => ({ id: r.id, name: r.name, family: r.family })),
        tables: tables.rows.map((r): TableInfo => ({
          name: r.name,
          kind: r.kind,
          ...(r.key_column ? { keyColumn: r.key_column } : {}),
          ...(r.key_type ? { keyType: r.key_type } : {}),
          ...(r.keyspace_id !== null ? { keyspaceId: r.keyspace_id } : {}),
        })),
        partitions: parts.rows.map((r): Partition => ({
          id: r.id, keyspaceId: r.keyspace_id, lo: BigInt(r.lo), hi: BigInt(r.hi), shardId: r.shard_id, state: r.state,
        })),
        ...(strays.length > 0 ? { strays } : {}),
      };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * Run a routing change in one transaction and bump the routing version when `fn` reports a
   * change. The row lock on routing_state serializes concurrent changes, so versions never fork.
   */
  async change(reason: string, fn: (c: pg.PoolClient) => Promise<boolean>, opts: { nowait?: boolean } = {}): Promise<number | null> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      try {
        await c.query(`SELECT version FROM pgtide.routing_state FOR UPDATE${opts.nowait ? ' NOWAIT' : ''}`);
      } catch (err) {
        if ((err as { code?: string }).code === '55P03') {
          throw new CatalogError('ROUTING_CHANGE_CONFLICT', 'another routing change is being committed right now; nothing was changed, retry', { sqlstate: '55P03' });
        }
        throw err;
      }
      const changed = await fn(c);
      let version: number | null = null;
      if (changed) {
        const r = await c.query<{ version: string }>('UPDATE pgtide.routing_state SET version = version + 1 RETURNING version');
        version = Number(r.rows[0]!.version);
        await c.query('INSERT INTO pgtide.routing_versions (version, reason) VALUES ($1, $2)', [version, reason]);
        await c.query('SELECT pg_notify($1, $2)', ['pgtide_routing', String(version)]);
      }
      await c.query('COMMIT');
      return version;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /** Declare a sharded table; creates its key space (with default partitions) when needed. */
  async shardTable(name: string, keyColumn: string, keyType: KeyType, opts: ShardTableOptions = {}): Promise<number | null> {
    const table = name.toLowerCase();
    return this.change(`shard table ${table} by ${keyColumn}`, async (c) => {
      const existing = await c.query<{ kind: string; key_column: string | null }>('SELECT kind, key_column FROM pgtide.tables WHERE name = $1', [table]);
      if (existing.rows[0]) {
        const e = existing.rows[0];
        if (e.kind === 'sharded' && e.key_column === keyColumn.toLowerCase()) return false;
        throw new CatalogError('TABLE_ALREADY_DECLARED', `table "${table}" is already declared as ${e.kind}${e.key_column ? ` by (${e.key_column})` : ''}`, { sqlstate: '42710' });
      }
      const family = keyFamily(keyType);
      let keyspaceId: number;
      if (opts.colocateWith && opts.placeAllOn !== undefined) {
        throw new CatalogError('KEYSPACE_EXISTS', `table "${table}" already holds rows (all on shard ${opts.placeAllOn}), so it cannot colocate with ${opts.colocateWith}, whose partitions are spread over the shards`, {
          sqlstate: '0A000', hint: `give the table a key space of its own: SHARD TABLE ${table} BY (${keyColumn}) ALONE`,
        });
      }
      if (opts.colocateWith) {
        const other = await c.query<{ keyspace_id: number | null; key_type: KeyType | null }>('SELECT keyspace_id, key_type FROM pgtide.tables WHERE name = $1 AND kind = $2',
          [opts.colocateWith.toLowerCase(), 'sharded']);
        const o = other.rows[0];
        if (!o || o.keyspace_id === null || !o.key_type) throw new CatalogError('UNKNOWN_TABLE', `cannot colocate with "${opts.colocateWith}": it is not a sharded table`, { sqlstate: '42P01' });
        if (keyFamily(o.key_type) !== family) {
          throw new CatalogError('KEYSPACE_TYPE_MISMATCH', `cannot colocate ${table} (${keyType} key) with ${opts.colocateWith} (${o.key_type} key): keys of different types never hash alike`, { sqlstate: '42804' });
        }
        keyspaceId = o.keyspace_id;
      } else {
        const ksName = opts.alone ? table : family;
        const ks = await c.query<{ id: number }>('SELECT id FROM pgtide.keyspaces WHERE name = $1', [ksName]);
        if (ks.rows[0] && opts.placeAllOn !== undefined) {
          throw new CatalogError('KEYSPACE_EXISTS', `table "${table}" already holds rows (all on shard ${opts.placeAllOn}), and key space "${ksName}" has its partitions spread over the shards: the rows cannot join it in place`, {
            sqlstate: '0A000', hint: `give the table a key space of its own: SHARD TABLE ${table} BY (${keyColumn}) ALONE`,
          });
        }
        if (ks.rows[0]) {
          keyspaceId = ks.rows[0].id;
        } else {
          const ins = await c.query<{ id: number }>('INSERT INTO pgtide.keyspaces (name, family) VALUES ($1, $2) RETURNING id', [ksName, family]);
          keyspaceId = ins.rows[0]!.id;
          const shards = await c.query<{ id: number }>("SELECT id FROM pgtide.shards WHERE state = 'active' ORDER BY id");
          if (shards.rows.length === 0) throw new CatalogError('NO_SHARDS', 'no active shard to place partitions on', { sqlstate: '55000' });
          if (opts.placeAllOn !== undefined && !shards.rows.some((r) => r.id === opts.placeAllOn)) {
            throw new CatalogError('SHARD_NOT_ACTIVE', `shard ${opts.placeAllOn} is not an active shard`, { sqlstate: '55000' });
          }
          const owners = opts.placeAllOn !== undefined ? [opts.placeAllOn] : shards.rows.map((r) => r.id);
          for (const p of defaultPartitions(keyspaceId, opts.partitions ?? 8, owners)) {
            await c.query('INSERT INTO pgtide.partitions (keyspace_id, lo, hi, shard_id) VALUES ($1, $2, $3, $4)', [keyspaceId, p.lo.toString(), p.hi.toString(), p.shardId]);
          }
        }
      }
      await c.query('INSERT INTO pgtide.tables (name, kind, key_column, key_type, keyspace_id) VALUES ($1, $2, $3, $4, $5)',
        [table, 'sharded', keyColumn.toLowerCase(), keyType, keyspaceId]);
      return true;
    });
  }

  async referenceTable(name: string): Promise<number | null> {
    const table = name.toLowerCase();
    return this.change(`reference table ${table}`, async (c) => {
      const existing = await c.query<{ kind: string }>('SELECT kind FROM pgtide.tables WHERE name = $1', [table]);
      if (existing.rows[0]) {
        if (existing.rows[0].kind === 'reference') return false;
        throw new CatalogError('TABLE_ALREADY_DECLARED', `table "${table}" is already declared as ${existing.rows[0].kind}`, { sqlstate: '42710' });
      }
      await c.query('INSERT INTO pgtide.tables (name, kind) VALUES ($1, $2)', [table, 'reference']);
      return true;
    });
  }

  /**
   * Cut partition `id` in two at hash `at` (both halves stay on the same shard: metadata only).
   * Without `at`, the load-weighted median of the partition's recent key samples, or the middle.
   */
  async splitPartition(id: number, at?: bigint): Promise<{ version: number; left: number; right: number; at: bigint }> {
    let result: { left: number; right: number; at: bigint } | null = null;
    const version = await this.change(`split partition ${id}`, async (c) => {
      const p = await c.query<{ keyspace_id: number; lo: string; hi: string; shard_id: number; state: string }>(
        'SELECT keyspace_id, lo::text AS lo, hi::text AS hi, shard_id, state FROM pgtide.partitions WHERE id = $1', [id]);
      const row = p.rows[0];
      if (!row) throw new CatalogError('UNKNOWN_PARTITION', `partition ${id} does not exist`, { sqlstate: '42704' });
      if (row.state !== 'active') throw new CatalogError('PARTITION_BUSY', `partition ${id} is ${row.state}; wait for its job to finish`, { sqlstate: '55006' });
      const lo = BigInt(row.lo);
      const hi = BigInt(row.hi);
      let cut = at;
      if (cut === undefined) {
        const samples = await c.query<{ h: string; w: number }>(
          `SELECT key_hash::text AS h, weight AS w FROM pgtide.key_samples
            WHERE partition_id = $1 AND bucket > now() - interval '1 hour' ORDER BY key_hash`, [id]);
        cut = weightedMedianCut(samples.rows.map((r) => ({ hash: BigInt(r.h), weight: r.w })), lo, hi);
      }
      if (cut <= lo || cut >= hi) {
        throw new CatalogError('BAD_SPLIT_POINT', `split point ${cut} is outside partition ${id}'s range (${lo}, ${hi})`, { sqlstate: '22023' });
      }
      await c.query('UPDATE pgtide.partitions SET hi = $2 WHERE id = $1', [id, cut.toString()]);
      const ins = await c.query<{ id: number }>('INSERT INTO pgtide.partitions (keyspace_id, lo, hi, shard_id) VALUES ($1, $2, $3, $4) RETURNING id',
        [row.keyspace_id, cut.toString(), hi.toString(), row.shard_id]);
      result = { left: id, right: ins.rows[0]!.id, at: cut };
      return true;
    }, { nowait: true });
    return { version: version!, ...result! };
  }

  /** Join two adjacent partitions of one key space on the same shard (metadata only). */
  async mergePartitions(a: number, b: number): Promise<{ version: number; kept: number; removed: number }> {
    let result: { kept: number; removed: number } | null = null;
    const version = await this.change(`merge partitions ${a}, ${b}`, async (c) => {
      const { rows } = await c.query<{ id: number; keyspace_id: number; lo: string; hi: string; shard_id: number; state: string }>(
        'SELECT p.id, p.keyspace_id, p.lo::text AS lo, p.hi::text AS hi, p.shard_id, p.state FROM pgtide.partitions p WHERE p.id = ANY($1) ORDER BY p.lo', [[a, b]]);
      for (const id of [a, b]) {
        if (!rows.some((r) => r.id === id)) throw new CatalogError('UNKNOWN_PARTITION', `partition ${id} does not exist`, { sqlstate: '42704' });
      }
      if (a === b) throw new CatalogError('BAD_MERGE', 'cannot merge a partition with itself', { sqlstate: '22023' });
      const [low, high] = rows as [typeof rows[0], typeof rows[0]];
      if (low.keyspace_id !== high.keyspace_id) throw new CatalogError('BAD_MERGE', `partitions ${a} and ${b} belong to different key spaces`, { sqlstate: '22023' });
      if (low.hi !== high.lo) throw new CatalogError('BAD_MERGE', `partitions ${a} and ${b} are not adjacent (${low.hi} ≠ ${high.lo})`, { sqlstate: '22023' });
      for (const r of rows) if (r.state !== 'active') throw new CatalogError('PARTITION_BUSY', `partition ${r.id} is ${r.state}; wait for its job to finish`, { sqlstate: '55006' });
      if (low.shard_id !== high.shard_id) {
        throw new CatalogError('MERGE_ACROSS_SHARDS', `partitions ${a} and ${b} live on different shards (${low.shard_id} and ${high.shard_id}); merging them means moving data`, {
          sqlstate: '0A000', hint: `move one first: MOVE PARTITION ${high.id} TO SHARD ${low.shard_id}`,
        });
      }
      await c.query('DELETE FROM pgtide.partitions WHERE id = $1', [high.id]);
      await c.query('UPDATE pgtide.partitions SET hi = $2 WHERE id = $1', [low.id, high.hi]);
      result = { kept: low.id, removed: high.id };
      return true;
    }, { nowait: true });
    return { version: version!, ...result! };
  }

  async getSetting(key: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ value: string }>('SELECT value FROM pgtide.settings WHERE key = $1', [key]);
    return rows[0]?.value ?? null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.pool.query('INSERT INTO pgtide.settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, value]);
  }

  /** Users a joining proxy accepts (secrets as stored: SCRAM secret or md5 hash). */
  async saveUsers(users: { name: string; secret: string; admin: boolean }[]): Promise<void> {
    for (const u of users) {
      await this.pool.query('INSERT INTO pgtide.users (name, secret, admin) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET secret = EXCLUDED.secret, admin = EXCLUDED.admin',
        [u.name, u.secret, u.admin]);
    }
  }

  async loadUsers(): Promise<{ name: string; secret: string; admin: boolean }[]> {
    const { rows } = await this.pool.query<{ name: string; secret: string; admin: boolean }>('SELECT name, secret, admin FROM pgtide.users ORDER BY name');
    return rows;
  }
}

/**
 * The hash that halves the *load* of a partition: the weighted median of its key samples
 * (weights = accesses each sample stands for). Falls back to the middle of the range when there
 * are too few samples or they all share one hash (a single hot key cannot be split).
 */
export function weightedMedianCut(samples: { hash: bigint; weight: number }[], lo: bigint, hi: bigint): bigint {
  const middle = lo + (hi - lo) / 2n;
  const inside = samples.filter((s) => s.hash >= lo && s.hash < hi).sort((x, y) => (x.hash < y.hash ? -1 : x.hash > y.hash ? 1 : 0));
  if (inside.length < 10) return middle;
  const total = inside.reduce((n, s) => n + s.weight, 0);
  let acc = 0;
  for (let i = 0; i < inside.length; i++) {
    acc += inside[i]!.weight;
    if (acc >= total / 2) {
      // Cut just above this sample, so it and everything below go left.
      const cut = inside[i]!.hash + 1n;
      return cut > lo && cut < hi ? cut : middle;
    }
  }
  return middle;
}
