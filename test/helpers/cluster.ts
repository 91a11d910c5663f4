// Test helper: a catalog + N shard servers + an in-process proxy on free ports, all stopped in `after`.
import { createHash } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import type { ProxyConfig, PoolMode } from '../../config/config-file.js';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import type { Clock } from '../../config/clock.js';
import type { MoverSettings } from '../../mover/index.js';
import { startTestServer, type TestServer } from './postgres.js';

export interface TestCluster {
  catalog: TestServer;
  shards: TestServer[];
  proxy: RunningProxy;
  config: ProxyConfig;
  /** postgres://app:app-password@127.0.0.1:port/app */
  url: string;
  adminUrl: string;
  /** A connected node-postgres client through the proxy (closed by stop()). */
  client(opts?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  admin(): Promise<pg.Client>;
  /** A direct client on shard i's application database. */
  shard(i: number): Promise<pg.Client>;
  stop(): Promise<void>;
}

export const APP_USER = 'app';
export const APP_PASSWORD = 'app-password';
export const APP_DB = 'app';

export async function startTestCluster(opts: { shards?: number; poolMode?: PoolMode; poolSize?: number; shardSettings?: Record<string, string | number>; recordIntervalMs?: number; twoPhaseCommit?: boolean; runJobs?: boolean; clock?: Clock; moverSettings?: Partial<MoverSettings>; pipelining?: boolean } = {}): Promise<TestCluster> {
  const n = opts.shards ?? 2;
  const servers = await Promise.all([
    startTestServer(),
    ...Array.from({ length: n }, () => startTestServer({ settings: { max_prepared_transactions: 16, ...opts.shardSettings } })),
  ]);
  const [catalog, ...shards] = servers as [TestServer, ...TestServer[]];
  const clients: pg.Client[] = [];
  let proxy: RunningProxy | null = null;
  try {
    for (const s of shards) {
      const c = await s.client();
      await c.query(`CREATE DATABASE ${APP_DB}`);
    }
    const port = await freePort();
    const config: ProxyConfig = {
      listen: { host: '127.0.0.1', port },
      database: APP_DB,
      users: [{ name: APP_USER, password: APP_PASSWORD, admin: true }, { name: 'md5user', password: `md5${createHash('md5').update('md5-password' + 'md5user').digest('hex')}`, admin: false }],
      auth: 'scram-sha-256',
      pool: { mode: opts.poolMode ?? 'transaction', size: opts.poolSize ?? 5, waitTimeoutMs: 10000, idleTimeoutMs: 60000, ...(opts.pipelining === false ? { pipelining: false } : {}) },
      catalog: catalog.url('postgres'),
      shards: shards.map((s) => s.url(APP_DB)),
      tables: { sharded: [], reference: [] },
      partitions: 8,
      http: { host: '127.0.0.1', port: 0 },
      routeCacheSize: 1000,
      logLevel: 'warn',
      twoPhaseCommit: opts.twoPhaseCommit ?? false,
    };
    const log = pino({ level: process.env.PGTIDE_TEST_LOG ?? 'silent' }, pino.destination(2));
    // Jobs are run by the test that creates them (mover tests drive runJob themselves), unless asked.
    proxy = await runProxy(config, log, {
      recordIntervalMs: opts.recordIntervalMs ?? 10_000, runJobs: opts.runJobs ?? false,
      ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.moverSettings ? { moverSettings: opts.moverSettings } : {}),
    });
    const url = `postgres://${APP_USER}:${APP_PASSWORD}@127.0.0.1:${proxy.port}/${APP_DB}`;
    const running = proxy;
    const connect = async (cfg: pg.ClientConfig) => {
      const c = new pg.Client(cfg);
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    };
    return {
      catalog, shards, proxy, config, url,
      adminUrl: `postgres://${APP_USER}:${APP_PASSWORD}@127.0.0.1:${proxy.port}/pgtide`,
      client: (o = {}) => connect({ connectionString: url, ...o }),
      admin: () => connect({ connectionString: `postgres://${APP_USER}:${APP_PASSWORD}@127.0.0.1:${running.port}/pgtide` }),
      shard: (i) => connect({ connectionString: shards[i]!.url(APP_DB) }),
      async stop() {
        await Promise.allSettled(clients.map((c) => c.end()));
        await running.stop().catch(() => {});
        await Promise.allSettled(servers.map((s) => s.stop()));
      },
    };
  } catch (err) {
    await proxy?.stop().catch(() => {});
    await Promise.allSettled(servers.map((s) => s.stop()));
    throw err;
  }
}
