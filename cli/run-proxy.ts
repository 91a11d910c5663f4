// Composition root of a proxy process: catalog → routing table → proxy server → admin backend.
import pg from 'pg';
import type { Logger } from 'pino';
import { Catalog } from '../config/catalog.js';
import type { ProxyConfig } from '../config/config-file.js';
import { PgtideError } from '../config/errors.js';
import type { RoutingTable } from '../config/types.js';
import type { AdminBackend } from '../proxy/admin/admin-session.js';
import { ProxyServer } from '../proxy/server.js';
import { PGTIDE_VERSION } from './version.js';

export interface RunningProxy {
  server: ProxyServer;
  catalog: Catalog;
  port: number;
  stop(): Promise<void>;
}

/** Admin work on shards goes through small dedicated pools, never through the client pools. */
class ShardAdminPools {
  private readonly pools = new Map<string, pg.Pool>();

  async query(url: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    let pool = this.pools.get(url);
    if (!pool) {
      pool = new pg.Pool({ connectionString: url, max: 2, idleTimeoutMillis: 10000, application_name: 'pgtide-admin' });
      pool.on('error', () => {});
      this.pools.set(url, pool);
    }
    const r = await pool.query(sql, params);
    return r.rows as Record<string, unknown>[];
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.end()));
  }
}

export async function runProxy(config: ProxyConfig, log: Logger): Promise<RunningProxy> {
  const catalog = await Catalog.open(config.catalog);
  try {
    await catalog.ensureShards(config.shards);
    for (const t of config.tables.sharded) {
      await catalog.shardTable(t.name, t.key, t.type, { partitions: config.partitions, ...(t.keyspace ? { alone: false } : {}) }).catch((err: unknown) => {
        // A table declared in the config and already in the catalog with another key is a real conflict.
        if (err instanceof PgtideError && err.code === 'TABLE_ALREADY_DECLARED') throw new PgtideError('CONFIG_CONFLICT', `config declares ${t.name} by (${t.key}) but the catalog says otherwise: ${err.message}`, { sqlstate: '42710' });
        throw err;
      });
    }
    for (const name of config.tables.reference) {
      await catalog.referenceTable(name).catch((err: unknown) => {
        if (err instanceof PgtideError && err.code === 'TABLE_ALREADY_DECLARED') throw new PgtideError('CONFIG_CONFLICT', `config declares ${name} as a reference table but the catalog says otherwise: ${err.message}`, { sqlstate: '42710' });
        throw err;
      });
    }
    const routing = await catalog.loadRoutingTable();
    const shardAdmin = new ShardAdminPools();
    let server: ProxyServer;
    const backend: AdminBackend = {
      catalog,
      version: PGTIDE_VERSION,
      async reload(): Promise<RoutingTable> {
        const t = await catalog.loadRoutingTable();
        server.installRouting(t);
        return t;
      },
      async queryShard(shardId, sql, params) {
        const shard = server.routingTable().shards.find((s) => s.id === shardId);
        if (!shard) throw new PgtideError('UNKNOWN_SHARD', `shard ${shardId} does not exist`, { sqlstate: '42704' });
        try {
          return await shardAdmin.query(shard.url, sql, params);
        } catch (err) {
          if (err instanceof PgtideError) throw err;
          const e = err as Error & { code?: string };
          throw new PgtideError('SHARD_QUERY_FAILED', `shard ${shardId}: ${e.message}`, { sqlstate: typeof e.code === 'string' && e.code.length === 5 ? e.code : '08006' });
        }
      },
    };
    server = new ProxyServer({ config, routing, log, admin: backend });
    const port = await server.listen(config.listen.host, config.listen.port);
    log.info({ port, routingVersion: routing.version, shards: routing.shards.length, mode: config.pool.mode }, 'pgtide listening');
    return {
      server,
      catalog,
      port,
      async stop() {
        await server.close();
        await shardAdmin.close();
        await catalog.close();
      },
    };
  } catch (err) {
    await catalog.close().catch(() => {});
    throw err;
  }
}
