// Composition root of a proxy process: catalog → routing table → proxy server → admin backend.
import pg from 'pg';
import type { Logger } from 'pino';
import { Catalog } from '../config/catalog.js';
import type { ProxyConfig } from '../config/config-file.js';
import { PgtideError } from '../config/errors.js';
import type { RoutingTable } from '../config/types.js';
import type { AdminBackend, JobsBackend } from '../proxy/admin/admin-session.js';
import { Mover, ShardOps, type MoverSettings, type RoutingControl, type ShardProvisioner } from '../mover/index.js';
import { moverAdmin } from './mover-admin.js';
import { ProxyServer } from '../proxy/server.js';
import { PGTIDE_VERSION } from './version.js';
import { ClusterMember } from '../proxy/cluster/member.js';
import { ClusterHolds, HOLD_ACKS_CHANNEL, HOLDS_CHANNEL } from '../proxy/cluster/cluster-holds.js';
import { scramSecretFor } from '../proxy/frontend/handshake.js';
import { sampleShardStats } from '../proxy/cluster/shard-stats.js';
import { StatusServer } from '../proxy/http/status-server.js';
import { TwoPhaseCoordinator } from '../proxy/twophase/coordinator.js';
import { Autopilot } from '../autopilot/index.js';
import type { Clock } from '../config/clock.js';

export interface RunningProxy {
  server: ProxyServer;
  catalog: Catalog;
  member: ClusterMember;
  /** The forecast → plan → apply loop (runs on the leader's clock; admin verbs on any proxy). */
  autopilot: Autopilot;
  mover: Mover;
  /** Cutover holds published by this proxy's mover, and placed here for other proxies' movers. */
  clusterHolds: ClusterHolds;
  port: number;
  /** The metrics/status HTTP port (0 when disabled). */
  httpPort: number;
  stop(): Promise<void>;
}

export interface RunProxyOptions {
  /** Access recording on (default) or off (for the recording-cost benchmark). */
  record?: boolean;
  recordIntervalMs?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** Run redistribution jobs when leader (default). Tests that drive the mover themselves turn it off. */
  runJobs?: boolean;
  /** Mover knobs (tests shorten grace periods). */
  moverSettings?: Partial<MoverSettings>;
  /** Starts a server for ADD SHARD without a URL (the embedded cluster's first proxy only). */
  provisionShard?: ShardProvisioner;
  /** How old an undecided prepared transaction must be before recovery rolls it back. */
  twoPhaseGraceMs?: number;
  /**
   * The time of the recorder's buckets and of the autopilot (forecasts, plans, cooldowns); the
   * wall clock unless a test compresses it. Leases, heartbeats and the mover keep real time.
   */
  clock?: Clock;
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

export async function runProxy(config: ProxyConfig, log: Logger, opts: RunProxyOptions = {}): Promise<RunningProxy> {
  const catalog = await Catalog.open(config.catalog);
  try {
    await catalog.ensureShards(config.shards);
    // What a proxy joining later (--join) needs: who may log in, and the application database name.
    await catalog.saveUsers(config.users.map((u) => ({ name: u.name, secret: scramSecretFor(u.password) ?? u.password, admin: u.admin })));
    await catalog.setSetting('database', config.database);
    await catalog.setSetting('pool_mode', config.pool.mode);
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
    let member: ClusterMember;
    let autopilot: Autopilot;
    let jobsBackend: JobsBackend;
    let shardOps: ShardOps;
    const backend: AdminBackend = {
      catalog,
      version: PGTIDE_VERSION,
      get member() {
        return member;
      },
      get autopilot() {
        return autopilot;
      },
      get jobs() {
        return jobsBackend;
      },
      get shardOps() {
        return shardOps;
      },
      async reload(): Promise<RoutingTable> {
        const t = await catalog.loadRoutingTable();
        if (t.version > server.routingTable().version) server.installRouting(t);
        await member.checkVersion();
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
    // The mover drives cutovers through this proxy's holds, and through the catalog every other
    // live proxy's (proxy/cluster/cluster-holds.ts): each holds the range and acks before the
    // fence; they learn the new version by NOTIFY and acks, and are released after it.
    const control: RoutingControl = {
      beforeCutover: () => clusterHolds.settleSuspects(),
      async holdRange(r) {
        server.holdRange(r);
        try {
          await clusterHolds.publishHold(r, r.holdMs ?? (opts.moverSettings?.cutoverBudgetMs ?? 100) + (opts.moverSettings?.installTimeoutMs ?? 5000) + 2000);
        } catch (err) {
          // Not published: no other proxy holds, so the cutover must not go on (it aborts and releases).
          throw new Error(`could not publish the cutover hold to the other proxies: ${(err as Error).message}`);
        }
      },
      async waitInFlight(r, timeoutMs) {
        await Promise.all([server.waitInFlight(r, timeoutMs), clusterHolds.waitAcks(r.jobId, timeoutMs)]);
      },
      async installVersion(version, timeoutMs) {
        // With the version as a hint: when the switch's NOTIFY already made this proxy install and
        // ack it, this returns at once instead of reading the whole routing table again (inside
        // the cutover's pause).
        await member.checkVersion(version);
        const behind = await member.waitForAcks(version, timeoutMs);
        if (behind.length > 0) throw new Error(`routing version ${version} not acknowledged by proxy ${behind.map((b) => b.id).join(', ')}`);
      },
      async release(r) {
        server.releaseRange(r);
        // With the version this proxy routes by now (the switched one after installVersion): a
        // proxy behind it installs it before its held statements run. Not published (catalog
        // away): the other proxies drop the hold at its deadline.
        await clusterHolds.publishRelease(r.jobId, server.routingTable().version)
          .catch((err: Error) => log.warn({ err: err.message, job: r.jobId }, 'could not publish the release of a cutover hold; other proxies release it at its deadline'));
      },
    };
    // The server exists by the time a job runs; the mover asks it for its foreground latencies.
    const mover = new Mover({ catalog, routing: control, foreground: { recentQuantile: (shard, q, since) => server.counters.latency.recentQuantile(shard, q, since) }, ...(opts.moverSettings ? { settings: opts.moverSettings } : {}), log: { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m) } });
    jobsBackend = moverAdmin(mover);
    shardOps = new ShardOps({ mover, ...(opts.provisionShard ? { provision: opts.provisionShard } : {}) });
    let moverRunning = false;
    autopilot = new Autopilot({
      mover: { startMove: (p, t) => mover.startMove(p, t) },
      catalog, log,
      ...(opts.clock ? { now: () => opts.clock!.now() } : {}),
      queryShard: (id, sql, params) => backend.queryShard(id, sql, params),
      async announce(version) {
        await backend.reload();
        const behind = await member.waitForAcks(version, 5000);
        return behind.length === 0 ? ['every live proxy routes by it'] : [`not yet acknowledged by ${behind.map((p) => `proxy ${p.id}`).join(', ')}`];
      },
    });
    server = new ProxyServer({ config, routing, log, admin: backend, record: opts.record ?? true, recordIntervalMs: opts.recordIntervalMs ?? 10_000, ...(opts.clock ? { clock: opts.clock } : {}) });
    const port = await server.listen(config.listen.host, config.listen.port);
    let lastStats = 0;
    const clusterHolds = new ClusterHolds({
      catalog, host: server, log, proxyId: () => member.proxyId, checkVersion: (hint) => member.checkVersion(hint),
      heartbeatMs: opts.heartbeatMs ?? 1000, deadAfterMs: opts.deadAfterMs ?? 5000,
    });
    member = new ClusterMember({
      catalog, catalogUrl: config.catalog, host: server, address: `${config.listen.host}:${port}`, log,
      heartbeatMs: opts.heartbeatMs ?? 1000, deadAfterMs: opts.deadAfterMs ?? 5000, flushMs: opts.recordIntervalMs ?? 10_000,
      channels: [HOLDS_CHANNEL, HOLD_ACKS_CHANNEL],
      onNotification: (channel, payload) => clusterHolds.onNotification(channel, payload),
      onSync: () => clusterHolds.sync(),
      onLeaderTick: async () => {
        // In-doubt two-phase transactions (a proxy died mid-commit) are finished by the leader.
        if (Date.now() - lastRecovery > 5000) {
          lastRecovery = Date.now();
          await coordinator.recover(server.routingTable(), (id, sql, params) => backend.queryShard(id, sql, params), opts.twoPhaseGraceMs ?? 30_000)
            .catch((err: Error) => log.warn({ err: err.message }, 'two-phase recovery failed'));
        }
        // Jobs run on the leader, in the background: a long copy never delays the heartbeat.
        if (opts.runJobs !== false && !moverRunning) {
          moverRunning = true;
          void mover.runPending().catch((err: Error) => log.warn({ err: err.message }, 'mover pass failed')).finally(() => (moverRunning = false));
        }
        // The forecast runs in the background (in a worker): the heartbeat never waits for it.
        void autopilot.onLeaderTick().catch((err: Error) => log.warn({ err: err.message }, 'autopilot tick failed'));
        // Server stats are sampled by the leader only, on the recorder's clock.
        if (Date.now() - lastStats < (opts.recordIntervalMs ?? 10_000)) return;
        lastStats = Date.now();
        await sampleShardStats(catalog, server.routingTable(), (id, sql, params) => backend.queryShard(id, sql, params));
      },
    });
    const coordinator = new TwoPhaseCoordinator(catalog.pool, () => member.proxyId, log);
    server.twoPhase = coordinator;
    let lastRecovery = 0;
    await member.start();
    server.member = member;
    const status = new StatusServer({ proxy: server, member, catalog, forecast: () => autopilot.statusForecast() });
    let httpPort = 0;
    try {
      httpPort = await status.listen(config.http.host, config.http.port);
    } catch (err) {
      log.warn({ err: (err as Error).message, port: config.http.port }, 'the metrics/status port is unavailable; serving without it');
    }
    log.info({ port, routingVersion: routing.version, shards: routing.shards.length, mode: config.pool.mode, proxy: member.proxyId }, 'pgtide listening');
    return {
      server,
      catalog,
      member,
      autopilot,
      port,
      httpPort,
      mover,
      clusterHolds,
      async stop() {
        await autopilot.stop();
        await mover.close().catch(() => {});
        await status.close();
        await member.stop();
        clusterHolds.stop();
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

/** The config of a proxy that joins an existing cluster: everything but the listen address comes from the catalog. */
export async function joinConfig(catalogUrl: string, listen: { host: string; port: number }, http: { host: string; port: number }): Promise<ProxyConfig> {
  const catalog = await Catalog.open(catalogUrl);
  try {
    const routing = await catalog.loadRoutingTable();
    const users = await catalog.loadUsers();
    const database = await catalog.getSetting('database');
    const poolMode = (await catalog.getSetting('pool_mode')) ?? 'transaction';
    if (!database || users.length === 0 || routing.shards.length === 0) {
      throw new PgtideError('NOT_A_CLUSTER', `the catalog at ${catalogUrl.replace(/:[^:@/]*@/, ':***@')} holds no pgtide cluster yet (start the first proxy without --join)`, { sqlstate: '55000' });
    }
    return {
      listen, database,
      users: users.map((u) => ({ name: u.name, password: u.secret, admin: u.admin })),
      auth: 'scram-sha-256',
      pool: { mode: poolMode === 'session' ? 'session' : 'transaction', size: 20, waitTimeoutMs: 30000, idleTimeoutMs: 600000 },
      catalog: catalogUrl,
      shards: routing.shards.map((s) => s.url),
      tables: { sharded: [], reference: [] },
      partitions: 8,
      http,
      routeCacheSize: 10000,
      logLevel: 'info',
    };
  } finally {
    await catalog.close();
  }
}
