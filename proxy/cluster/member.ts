// One proxy's membership in the cluster: registration, heartbeats, routing versions, leader lease, load flushing.
//
// The catalog is the single source of truth and the only coordination service: each proxy has a
// row in pgtide.proxies that it heartbeats; it LISTENs on `pgtide_routing` for new versions (and
// re-reads every few seconds as a safety net), installs them and acknowledges by writing the
// version into its row. One proxy holds a session advisory lock on a dedicated connection: the
// leader lease. If that process dies its connection dies and the lock is free for the next one
// that asks (every heartbeat). The leader marks proxies whose heartbeat lapsed as dead, so they
// are excluded from acks; a dead proxy that comes back reloads before it calls itself alive.
import pg from 'pg';
import type { Logger } from 'pino';
import type { Catalog } from '../../config/catalog.js';
import { PgtideError } from '../../config/errors.js';
import type { RoutingTable } from '../../config/types.js';
import type { IntervalSnapshot } from '../recorder.js';

/** Advisory lock key of the leader lease ('pgtl'). */
export const LEADER_LOCK = 0x7067746c;

export interface MemberHost {
  routingTable(): RoutingTable;
  installRouting(table: RoutingTable): void;
  /** Finished intervals not yet handed out (a routing switch also ends an interval). */
  drainRecorder(): IntervalSnapshot[];
}

export interface MemberOptions {
  catalog: Catalog;
  catalogUrl: string;
  host: MemberHost;
  address: string;
  log: Logger;
  heartbeatMs?: number;
  /** A proxy whose heartbeat is older than this is dead. */
  deadAfterMs?: number;
  /** Safety-net re-read of the routing version. */
  pollMs?: number;
  flushMs?: number;
  /** Leader-only work on each heartbeat (shard stats sampling, planner loop…). */
  onLeaderTick?: () => Promise<void>;
  /** More channels to LISTEN on (cutover holds), and where their notifications go. */
  channels?: string[];
  onNotification?: (channel: string, payload: string | undefined) => void;
  /**
   * Catalog state to re-read besides the routing table (cutover holds): at start, on every
   * routing poll, and before a proxy that was declared dead calls itself alive again.
   */
  onSync?: () => Promise<void>;
}

export type MemberState = 'starting' | 'alive' | 'degraded' | 'stopped';

export class ClusterMember {
  proxyId = 0;
  isLeader = false;
  state: MemberState = 'starting';
  lastHeartbeatOk = 0;
  lastFlushOk = 0;
  /** Snapshots not yet written (the catalog was away): kept, up to a bound, and retried. */
  private pendingFlushes: IntervalSnapshot[] = [];
  private listener: pg.Client | null = null;
  private listening = false;
  private leaseClient: pg.Client | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private installing = Promise.resolve();
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;

  constructor(private readonly opts: MemberOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.deadAfterMs = opts.deadAfterMs ?? 5000;
  }

  private get log(): Logger {
    return this.opts.log;
  }

  async start(): Promise<void> {
    const { rows } = await this.opts.catalog.pool.query<{ id: number }>(
      'INSERT INTO pgtide.proxies (address, pid, routing_version) VALUES ($1, $2, $3) RETURNING id',
      [this.opts.address, process.pid, this.opts.host.routingTable().version]);
    this.proxyId = rows[0]!.id;
    this.state = 'alive';
    this.lastHeartbeatOk = Date.now();
    await this.listen().catch((err: Error) => this.log.warn({ err: err.message }, 'LISTEN on the catalog failed; relying on polling'));
    await this.sync();
    await this.tick();
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(() => void fn().catch((err: Error) => this.log.debug({ err: err.message }, 'cluster task failed')), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.heartbeatMs, () => this.tick());
    every(this.opts.pollMs ?? 3000, async () => {
      await this.checkVersion();
      await this.sync();
    });
    every(this.opts.flushMs ?? 10_000, () => this.flush());
  }

  private async listen(): Promise<void> {
    if (this.listening || this.stopped) return;
    this.listening = true;
    const c = new pg.Client({ connectionString: this.opts.catalogUrl, application_name: 'pgtide-listen' });
    const lost = () => {
      if (this.listener === c) this.listener = null;
    };
    c.on('error', lost);
    c.on('end', lost);
    try {
      await c.connect();
      c.on('notification', (n) => {
        if (n.channel === 'pgtide_routing') void this.checkVersion(Number(n.payload));
        else this.opts.onNotification?.(n.channel, n.payload);
      });
      await c.query('LISTEN pgtide_routing');
      for (const ch of this.opts.channels ?? []) await c.query(`LISTEN ${ch}`);
      if (this.stopped) {
        await c.end().catch(() => {});
        return;
      }
      this.listener = c;
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    } finally {
      this.listening = false;
    }
  }

  /** Install the catalog's routing version when it is newer than ours, then acknowledge it. */
  checkVersion(hint?: number): Promise<void> {
    this.installing = this.installing.then(async () => {
      if (this.stopped) return;
      const current = this.opts.host.routingTable().version;
      if (hint !== undefined && hint <= current) return;
      const table = await this.opts.catalog.loadRoutingTable();
      if (table.version > current) {
        this.opts.host.installRouting(table);
        this.log.info({ version: table.version, proxy: this.proxyId }, 'installed routing version');
      }
      await this.ack();
    }).catch((err: Error) => {
      this.log.warn({ err: err.message }, 'could not read the routing table from the catalog');
    });
    return this.installing;
  }

  /** Re-read the catalog state besides the routing table (cutover holds); errors are logged. */
  private async sync(): Promise<void> {
    if (this.stopped || !this.opts.onSync) return;
    await this.opts.onSync().catch((err: Error) => this.log.warn({ err: err.message }, 'could not read the cutover holds from the catalog'));
  }

  private async ack(): Promise<void> {
    await this.opts.catalog.pool.query('UPDATE pgtide.proxies SET routing_version = $2 WHERE id = $1', [this.proxyId, this.opts.host.routingTable().version]);
  }

  /** Heartbeat; leader lease; leader duties. */
  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const { rows } = await this.opts.catalog.pool.query<{ state: string }>(
        'UPDATE pgtide.proxies SET last_heartbeat = now(), leader = $2 WHERE id = $1 RETURNING state', [this.proxyId, this.isLeader]);
      this.lastHeartbeatOk = Date.now();
      if (rows[0]?.state === 'dead') {
        // We were declared dead while away: the routing table may have moved on without us.
        this.log.warn({ proxy: this.proxyId }, 'this proxy was marked dead; reloading the routing table before serving as alive');
        await this.checkVersion();
        await this.sync();
        await this.opts.catalog.pool.query("UPDATE pgtide.proxies SET state = 'alive' WHERE id = $1", [this.proxyId]);
      }
      if (this.state === 'degraded') {
        this.log.info('catalog reachable again');
        await this.checkVersion();
        await this.sync();
      }
      // A lost LISTEN connection (catalog restart) is opened again, and what it may have missed re-read.
      if (!this.listener && !this.listening && await this.listen().then(() => this.listener !== null, () => false)) {
        await this.checkVersion();
        await this.sync();
      }
      this.state = 'alive';
    } catch (err) {
      if (this.state !== 'degraded') this.log.warn({ err: (err as Error).message }, 'catalog unreachable: routing by the last installed version');
      this.state = 'degraded';
      this.isLeader = false;
      this.leaseClient?.end().catch(() => {});
      this.leaseClient = null;
      return;
    }
    await this.tryLease();
    if (this.isLeader) {
      await this.opts.catalog.pool.query(
        `UPDATE pgtide.proxies SET state = 'dead', leader = false
          WHERE state = 'alive' AND last_heartbeat < now() - make_interval(secs => $1::float8 / 1000)`, [this.deadAfterMs]);
      await this.opts.onLeaderTick?.().catch((err: Error) => this.log.warn({ err: err.message }, 'leader task failed'));
    }
  }

  private async tryLease(): Promise<void> {
    if (this.isLeader && this.leaseClient) return;
    const c = new pg.Client({ connectionString: this.opts.catalogUrl, application_name: 'pgtide-lease' });
    c.on('error', () => {
      // Losing the lease connection loses the lease: Postgres releases the lock with the session.
      this.isLeader = false;
      this.leaseClient = null;
    });
    try {
      await c.connect();
      const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_LOCK]);
      if (rows[0]?.ok) {
        this.leaseClient = c;
        this.isLeader = true;
        await this.opts.catalog.pool.query('UPDATE pgtide.proxies SET leader = (id = $1) WHERE leader OR id = $1', [this.proxyId]);
        this.log.info({ proxy: this.proxyId }, 'this proxy holds the leader lease');
        return;
      }
    } catch {
      // catalog trouble: the heartbeat reports it
    }
    await c.end().catch(() => {});
  }

  /** Write the recorder's finished interval(s) to the catalog's load history. */
  async flush(): Promise<void> {
    this.pendingFlushes.push(...this.opts.host.drainRecorder());
    // Keep at most an hour of intervals while the catalog is away.
    if (this.pendingFlushes.length > 360) this.pendingFlushes.splice(0, this.pendingFlushes.length - 360);
    while (this.pendingFlushes.length > 0) {
      const snap = this.pendingFlushes[0]!;
      await this.writeSnapshot(snap);
      this.pendingFlushes.shift();
      this.lastFlushOk = Date.now();
    }
  }

  private async writeSnapshot(snap: IntervalSnapshot): Promise<void> {
    if (snap.entries.length === 0 && snap.samples.length === 0) return;
    const bucket = new Date(snap.bucket).toISOString();
    const c = await this.opts.catalog.pool.connect();
    try {
      await c.query('BEGIN');
      if (snap.entries.length > 0) {
        const e = snap.entries;
        await c.query(
          `INSERT INTO pgtide.load_history (bucket, proxy_id, interval_s, partition_id, table_name, reads, writes, rows, bytes_in, bytes_out, latency_us, max_latency_us, errors)
           SELECT $1, $2, $3, * FROM unnest($4::int[], $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[])
           ON CONFLICT (bucket, proxy_id, partition_id, table_name) DO UPDATE SET
             reads = load_history.reads + EXCLUDED.reads, writes = load_history.writes + EXCLUDED.writes, rows = load_history.rows + EXCLUDED.rows,
             bytes_in = load_history.bytes_in + EXCLUDED.bytes_in, bytes_out = load_history.bytes_out + EXCLUDED.bytes_out,
             latency_us = load_history.latency_us + EXCLUDED.latency_us, max_latency_us = greatest(load_history.max_latency_us, EXCLUDED.max_latency_us),
             errors = load_history.errors + EXCLUDED.errors`,
          [bucket, this.proxyId, Math.round(snap.intervalMs / 1000), e.map((x) => x.partitionId), e.map((x) => x.table), e.map((x) => x.reads), e.map((x) => x.writes),
            e.map((x) => x.rows), e.map((x) => x.bytesIn), e.map((x) => x.bytesOut), e.map((x) => x.latencyUs), e.map((x) => x.maxLatencyUs), e.map((x) => x.errors)]);
      }
      if (snap.samples.length > 0) {
        const s = snap.samples;
        await c.query(
          `INSERT INTO pgtide.key_samples (bucket, proxy_id, table_name, partition_id, key_hash, key_text, weight)
           SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::numeric[], $6::text[], $7::float8[])`,
          [bucket, this.proxyId, s.map((x) => x.table), s.map((x) => x.partitionId), s.map((x) => x.hash), s.map((x) => x.key), s.map((x) => x.weight)]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * Wait until every live proxy acknowledged `version` (dead ones are excluded). Returns the
   * proxies still behind when the deadline passed.
   */
  async waitForAcks(version: number, timeoutMs = 5000): Promise<{ id: number; address: string; routing_version: string }[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await this.opts.catalog.pool.query<{ id: number; address: string; routing_version: string }>(
        "SELECT id, address, routing_version FROM pgtide.proxies WHERE state = 'alive' AND routing_version < $1", [version]);
      if (rows.length === 0 || Date.now() > deadline) return rows;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Refuse catalog writes while the catalog is away, with an error a DBA understands. */
  assertCatalogReachable(): void {
    if (this.state === 'degraded') {
      throw new PgtideError('CATALOG_UNREACHABLE', `the catalog is unreachable; routing changes are refused until it returns (this proxy keeps routing by version ${this.opts.host.routingTable().version})`, { sqlstate: '08006' });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.flush().catch(() => {});
    await this.opts.catalog.pool.query("UPDATE pgtide.proxies SET state = 'stopped', leader = false WHERE id = $1", [this.proxyId]).catch(() => {});
    await this.listener?.end().catch(() => {});
    await this.leaseClient?.end().catch(() => {});
  }
}
