// The proxy process's front door: listener, logins, pools per shard, the routing table it serves.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { ProxyConfig, UserConfig } from '../config/config-file.js';
import { RoutingIndex } from '../config/routing.js';
import { wallClock, type Clock } from '../config/clock.js';
import type { RoutingTable } from '../config/types.js';
import { ServerConnection, sendCancel } from './backend/server-connection.js';
import type { ProxyContext, ProxyCounters, SessionHandle } from './context.js';
import { acceptConnection, scramSecretFor, type HandshakeHost, type LoginResult } from './frontend/handshake.js';
import { ShardPool } from './pool/shard-pool.js';
import { ShardPipeline } from './pool/pipeline.js';
import { buildParse } from './protocol/frontend-writer.js';
import { Router } from './router/index.js';
import { ClientSession } from './session/client-session.js';
import { startupSettings } from './session/session-settings.js';
import { StatementRegistry } from './session/statement-registry.js';
import { AdminSession, type AdminBackend } from './admin/admin-session.js';
import { AccessRecorder, type IntervalSnapshot } from './recorder.js';
import type { ClusterMember } from './cluster/member.js';
import { LatencyHistogram } from './http/latency-histogram.js';
import type { TwoPhaseCoordinator } from './twophase/coordinator.js';
import { RangeHolds, type ActiveHold, type HoldRange } from './holds.js';

/** Statements one pipeline lane may hold, and how long its head may run before the lane takes no more (ms). */
const PIPELINE_MAX_DEPTH = 8;
const PIPELINE_STUCK_MS = 10;

/** GUCs a client is told at login, as Postgres reports them. */
const REPORTED_PARAMS = ['server_version', 'server_encoding', 'client_encoding', 'DateStyle', 'TimeZone', 'integer_datetimes',
  'standard_conforming_strings', 'IntervalStyle', 'is_superuser', 'session_authorization', 'application_name'];

export interface ProxyServerOptions {
  config: ProxyConfig;
  routing: RoutingTable;
  log: Logger;
  admin: AdminBackend;
  /** Access recording (default on) and its interval (real ms). */
  record?: boolean;
  recordIntervalMs?: number;
  /** The time recorded load is stamped with (default the wall clock; tests compress it). */
  clock?: Clock;
}

function parseShardUrl(url: string) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
  };
}

export class ProxyServer implements ProxyContext, HandshakeHost {
  readonly poolMode;
  readonly database: string;
  readonly log: Logger;
  readonly router: Router;
  readonly statements = new StatementRegistry(buildParse);
  readonly serverParams = new Map<string, string>();
  readonly sessions = new Map<number, SessionHandle>();
  readonly counters: ProxyCounters = { queries: 0, transactions: 0, errors: 0, bytesIn: 0, bytesOut: 0, perShard: new Map(), scatter: 0, broadcast: 0, fenceRetries: 0, pipelined: 0, latency: new LatencyHistogram() };
  readonly appDatabase: string;
  readonly authMethod;
  readonly tlsContext: tls.SecureContext | null;
  readonly startedAt = Date.now();
  readonly recorder: AccessRecorder;
  /** Intervals ended by a routing switch, waiting for the next flush. */
  private endedIntervals: IntervalSnapshot[] = [];
  private index: RoutingIndex;
  private table: RoutingTable;
  private readonly shardPools = new Map<number, ShardPool>();
  private readonly pipelines = new WeakMap<ShardPool, ShardPipeline>();
  private readonly users = new Map<string, UserConfig>();
  private readonly scramSecrets = new Map<string, string | null>();
  private readonly adminSessions = new Set<AdminSession>();
  private server: net.Server | null = null;
  private nextPid = 1;
  /** Set by the composition root once the proxy registered in the catalog. */
  member: ClusterMember | null = null;
  twoPhase: TwoPhaseCoordinator | null = null;
  /** Cutover holds; each notes its source, the shard owning the range when it was placed. */
  readonly holds = new RangeHolds((keyspaceId, lo) => this.index.partitionFor(keyspaceId, lo).shardId);
  readonly twoPhaseDefault: boolean;
  logins = 0;
  loginFailures = 0;

  constructor(private readonly opts: ProxyServerOptions) {
    const { config } = opts;
    this.poolMode = config.pool.mode;
    this.database = config.database;
    this.appDatabase = config.database;
    this.authMethod = config.auth;
    this.twoPhaseDefault = config.twoPhaseCommit ?? false;
    this.log = opts.log;
    this.index = new RoutingIndex(opts.routing);
    this.table = opts.routing;
    // Buckets are in the clock's time: a flush every recordIntervalMs real ms spans recordIntervalMs × scale of it.
    const clock = opts.clock ?? wallClock;
    this.recorder = new AccessRecorder(Math.round((opts.recordIntervalMs ?? 10_000) * clock.scale), () => clock.now());
    this.recorder.enabled = opts.record ?? true;
    this.recorder.setRouting(opts.routing);
    this.router = new Router(() => this.index, { cacheSize: config.routeCacheSize });
    for (const u of config.users) this.users.set(u.name, u);
    this.tlsContext = config.tls ? tls.createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }) : null;
  }

  get config(): ProxyConfig {
    return this.opts.config;
  }

  // ---- ProxyContext ----

  routing(): RoutingIndex {
    return this.index;
  }

  routingTable(): RoutingTable {
    return this.table;
  }

  pool(shardId: number): ShardPool {
    let p = this.shardPools.get(shardId);
    if (!p) {
      const shard = this.index.shards.find((s) => s.id === shardId);
      if (!shard) throw new Error(`shard ${shardId} is not in routing version ${this.index.version}`);
      const c = this.opts.config.pool;
      p = new ShardPool({ shardId, ...parseShardUrl(shard.url), size: c.size, waitTimeoutMs: c.waitTimeoutMs, idleTimeoutMs: c.idleTimeoutMs });
      this.shardPools.set(shardId, p);
    }
    return p;
  }

  pipeline(shardId: number): ShardPipeline | null {
    const c = this.opts.config.pool;
    if (c.pipelining === false || c.mode !== 'transaction') return null;
    const pool = this.pool(shardId);
    let p = this.pipelines.get(pool);
    if (!p) {
      p = new ShardPipeline(pool, { maxDepth: PIPELINE_MAX_DEPTH, stuckMs: PIPELINE_STUCK_MS });
      this.pipelines.set(pool, p);
    }
    return p;
  }

  pools(): ShardPool[] {
    return [...this.shardPools.values()];
  }

  /** Serve a new routing version from now on (the route cache depends on which tables are sharded). */
  installRouting(table: RoutingTable): void {
    const next = new RoutingIndex(table);
    this.index = next;
    this.table = table;
    this.router.invalidate();
    // Counters are indexed by partition: end the interval under the old map before switching.
    this.endedIntervals.push(this.recorder.drain());
    this.recorder.setRouting(table);
    for (const [id, pool] of this.shardPools) {
      const shard = table.shards.find((s) => s.id === id);
      if (!shard) {
        void pool.close();
        this.shardPools.delete(id);
        continue;
      }
      const u = parseShardUrl(shard.url);
      if (u.host !== pool.opts.host || u.port !== pool.opts.port || u.database !== pool.opts.database) {
        void pool.close();
        this.shardPools.delete(id);
      }
    }
    this.log.info({ version: table.version }, 'routing version installed');
  }

  // ---- cutover support (the mover's RoutingControl drives these) ----

  holdRange(range: HoldRange): void {
    this.holds.hold(range);
  }

  releaseRange(range: HoldRange): void {
    this.holds.release(range);
  }

  /**
   * Is an open transaction of some client one the cutover of this range waits for (it touched the
   * range, or the key space on the range's source shard before the hold; see inFlightFor)?
   */
  rangeInFlight(range: HoldRange): boolean {
    let holds: readonly ActiveHold[] = this.holds.forJob(range.jobId);
    if (holds.length === 0) {
      // Not held (yet): whatever touched the key space on its shard so far counts.
      holds = [{ jobId: range.jobId, keyspaceId: range.keyspaceId, lo: range.lo, hi: range.hi, owner: 'local', seq: Number.POSITIVE_INFINITY, source: this.holds.sourceFor(range.keyspaceId, range.lo) }];
    }
    for (const s of this.sessions.values()) for (const h of holds) if (s.inFlightFor(h)) return true;
    return false;
  }

  /**
   * Resolves when no open transaction of any client touched the range; rejects after the timeout.
   * `stillWanted` (optional) ends the wait early, resolving false, when the hold it serves is gone.
   */
  async waitInFlight(range: HoldRange, timeoutMs: number, stillWanted?: () => boolean): Promise<boolean> {
    const t0 = Date.now();
    for (;;) {
      if (!this.rangeInFlight(range)) return true;
      if (stillWanted && !stillWanted()) return false;
      if (Date.now() - t0 > timeoutMs) throw new Error(`transactions on the range are still open after ${timeoutMs} ms`);
      // Poll tightly at first (the usual wait is one statement), then gently (a long transaction).
      await new Promise((r) => setTimeout(r, Date.now() - t0 < 100 ? 2 : 10));
    }
  }

  async reloadRouting(): Promise<void> {
    if (this.member) await this.member.checkVersion();
  }

  drainRecorder(): IntervalSnapshot[] {
    const out = this.endedIntervals;
    this.endedIntervals = [];
    out.push(this.recorder.drain());
    return out;
  }

  // ---- HandshakeHost ----

  user(name: string): UserConfig | undefined {
    return this.users.get(name);
  }

  scramSecret(user: UserConfig): string | null {
    if (!this.scramSecrets.has(user.name)) this.scramSecrets.set(user.name, scramSecretFor(user.password));
    return this.scramSecrets.get(user.name)!;
  }

  loginParams(clientParams: Record<string, string>): [string, string][] {
    const out: [string, string][] = [];
    for (const name of REPORTED_PARAMS) {
      const lower = name.toLowerCase();
      const requested = Object.entries(clientParams).find(([k]) => k.toLowerCase() === lower)?.[1];
      const value = name === 'application_name' ? (requested ?? '') : (requested ?? this.serverParams.get(name));
      if (value !== undefined) out.push([name, value]);
    }
    return out;
  }

  newBackendKey(): { pid: number; secret: Buffer } {
    return { pid: this.nextPid++, secret: randomBytes(4) };
  }

  cancel(pid: number, secret: Buffer): void {
    const session = this.sessions.get(pid);
    if (!session || session.secret.length !== secret.length || !timingSafeEqual(session.secret, secret)) {
      this.log.info({ pid }, 'cancel request for an unknown session ignored');
      return;
    }
    if (session.cancelPipelined()) return;
    for (const s of session.linkedServers()) {
      sendCancel(s.host, s.port, s.pid, s.secret).catch((err: Error) => this.log.warn({ err: err.message, shard: s.shardId }, 'cancel forward failed'));
    }
  }

  onLogin(r: LoginResult): void {
    this.logins++;
    r.socket.setKeepAlive(true, 60_000);
    if (r.database === 'pgtide') {
      const s = new AdminSession(this, this.opts.admin, r.socket, r.reader, r.user.name, r.pid, r.secret);
      this.adminSessions.add(s);
      r.socket.once('close', () => this.adminSessions.delete(s));
      s.start();
      return;
    }
    const remote = `${r.socket.remoteAddress}:${r.socket.remotePort}`;
    const session = new ClientSession(this, r.socket, r.reader, r.user.name, r.database, r.secret, startupSettings(r.params), remote, r.pid);
    session.start();
  }

  onRejected(reason: string, remote: string): void {
    this.loginFailures++;
    this.log.info({ remote, reason }, 'login refused');
  }

  // ---- lifecycle ----

  /** Learn the server's reported parameters (server_version, encoding…) for client logins. */
  async probeServerParams(): Promise<void> {
    const shard = this.index.shards.find((s) => s.id === this.index.primaryShardId);
    if (!shard) return;
    const conn = await ServerConnection.connect({ ...parseShardUrl(shard.url), connectTimeoutMs: 5000 });
    for (const [k, v] of conn.serverParams) this.serverParams.set(k, v);
    conn.socket.destroy();
  }

  async listen(host: string, port: number): Promise<number> {
    await Router.init();
    try {
      await this.probeServerParams();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not reach the primary shard to learn its parameters; using defaults');
      for (const [k, v] of Object.entries({ server_version: '15.0', server_encoding: 'UTF8', client_encoding: 'UTF8', DateStyle: 'ISO, MDY', TimeZone: 'UTC', integer_datetimes: 'on', standard_conforming_strings: 'on', IntervalStyle: 'postgres' })) {
        this.serverParams.set(k, v);
      }
    }
    const server = net.createServer((socket) => acceptConnection(this, socket));
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    const closing = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of [...this.sessions.values()]) s.terminate();
    for (const s of [...this.adminSessions]) s.terminate();
    await closing;
    await Promise.all([...this.shardPools.values()].map((p) => p.close()));
  }
}
