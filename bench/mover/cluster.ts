// A bench cluster: catalog + 2 shard servers (embedded, ephemeral) and one in-process pgtide proxy
// started as cli/run-proxy.ts starts it in production, so the mover's cutover holds, in-flight
// waits, routing installs and acks go through the real proxy. The proxy's own leader loop does not
// run jobs (runJobs: false): the bench drives them with its own Mover over the proxy's RoutingControl.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { ProxyConfig } from '../../config/config-file.js';
import { freePort, startEmbeddedServer, type EmbeddedServer } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import type { Partition } from '../../config/types.js';

export const TABLE_DDL = 'CREATE TABLE accounts (id int8 PRIMARY KEY, balance int8 NOT NULL, note text)';
const PASSWORD = 'bench';

export interface BenchCluster {
  proxy: RunningProxy;
  /** Client URL through the proxy (application database). */
  url: string;
  shards: EmbeddedServer[];
  /** A direct client on shard i's application database (closed by stop()). */
  shard(i: number): Promise<pg.Client>;
  /** The accounts partitions of the proxy's current routing table. */
  partitions(): Partition[];
  /** The servers' last ERROR/FATAL log lines (name: line), for reports of failed jobs. */
  serverErrors(): string[];
  stop(): Promise<void>;
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

export async function startBenchCluster(opts: { partitions: number; poolSize?: number }): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-bench-mover-cluster-'));
  chmodSync(dir, 0o755);
  const servers: EmbeddedServer[] = [];
  const clients: pg.Client[] = [];
  const errors: string[] = [];
  let proxy: RunningProxy | null = null;
  const stop = async () => {
    await Promise.allSettled(clients.map((c) => c.end()));
    if (proxy) await proxy.stop().catch(() => {});
    await Promise.allSettled(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const name of ['catalog', 'shard-0', 'shard-1']) {
      servers.push(await startEmbeddedServer({ dataDir: join(dir, name), port: await freePort(), user: 'postgres', password: PASSWORD, ephemeral: true,
        settings: { max_connections: 100, max_prepared_transactions: 16 },
        onLog: (chunk) => {
          for (const line of chunk.split('\n')) {
            if (!/\b(ERROR|FATAL|PANIC):/.test(line)) continue;
            errors.push(`${name}: ${line.trim()}`);
            if (errors.length > 200) errors.shift();
          }
        } }));
    }
    const [catalog, ...shards] = servers as [EmbeddedServer, ...EmbeddedServer[]];
    for (const s of shards) {
      const c = await client(s.url('postgres'));
      await c.query('CREATE DATABASE app');
      await c.end();
      const a = await client(s.url('app'));
      await a.query(TABLE_DDL);
      await a.end();
    }
    const config: ProxyConfig = {
      listen: { host: '127.0.0.1', port: await freePort() }, database: 'app',
      users: [{ name: 'app', password: PASSWORD, admin: true }], auth: 'scram-sha-256',
      pool: { mode: 'transaction', size: opts.poolSize ?? 16, waitTimeoutMs: 30000, idleTimeoutMs: 600000 },
      catalog: catalog.url('postgres'), shards: shards.map((s) => s.url('app')),
      tables: { sharded: [{ name: 'accounts', key: 'id', type: 'int8' }], reference: [] },
      partitions: opts.partitions, http: { host: '127.0.0.1', port: 0 }, routeCacheSize: 10000, logLevel: 'warn',
    };
    proxy = await runProxy(config, pino({ level: process.env.PGTIDE_BENCH_LOG ?? 'warn' }, pino.destination(2)), { runJobs: false });
    const running = proxy;
    return {
      proxy: running,
      url: `postgres://app:${PASSWORD}@127.0.0.1:${running.port}/app`,
      shards,
      async shard(i) {
        const c = await client(shards[i]!.url('app'));
        clients.push(c);
        return c;
      },
      partitions() {
        const t = running.server.routingTable();
        const ks = t.tables.find((x) => x.name === 'accounts')!.keyspaceId;
        return t.partitions.filter((p) => p.keyspaceId === ks);
      },
      serverErrors: () => [...errors],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Fill the accounts table: ids 1..n, each row inserted straight into the shard that owns it by
 * the proxy's routing table. Returns the ids per partition id.
 */
export async function fillAccounts(cl: BenchCluster, n: number): Promise<Map<number, number[]>> {
  const byPartition = new Map<number, number[]>();
  for (const p of cl.partitions()) {
    const c = await cl.shard(p.shardId);
    await c.query(`INSERT INTO accounts SELECT g, 0, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, $1::int8) g
      WHERE hashint8extended(g, 0) >= $2::int8 AND hashint8extended(g, 0) < $3::numeric`, [n, p.lo.toString(), p.hi.toString()]);
    const { rows } = await c.query<{ id: string }>('SELECT id FROM accounts WHERE hashint8extended(id, 0) >= $1::int8 AND hashint8extended(id, 0) < $2::numeric AND id <= $3',
      [p.lo.toString(), p.hi.toString(), n]);
    byPartition.set(p.id, rows.map((r) => Number(r.id)));
  }
  for (let i = 0; i < cl.shards.length; i++) await (await cl.shard(i)).query('VACUUM ANALYZE accounts');
  return byPartition;
}
