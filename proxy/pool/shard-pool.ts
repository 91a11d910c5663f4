// The pool of server connections to one shard: idle stack, waiters with a deadline, lazy growth.
import { PgtideError } from '../../config/errors.js';
import { ServerConnection } from '../backend/server-connection.js';
import { BackendScanner, BackendCode } from '../protocol/backend-scanner.js';
import { PooledServer, type ServerSink } from './pooled-server.js';

export interface ShardPoolOptions {
  shardId: number;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  size: number;
  waitTimeoutMs: number;
  idleTimeoutMs: number;
  connectTimeoutMs?: number;
}

interface Waiter {
  resolve: (s: PooledServer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class PoolError extends PgtideError {}

export class ShardPool implements ServerSink {
  private readonly idle: PooledServer[] = [];
  private readonly all = new Set<PooledServer>();
  private readonly waiters: Waiter[] = [];
  private connecting = 0;
  private closed = false;
  private readonly reaper: NodeJS.Timeout;
  /** Last connect failure, for SHOW POOLS and fast failure while the shard is down. */
  lastError: Error | null = null;
  totalAcquired = 0;
  totalWaitMs = 0;

  constructor(readonly opts: ShardPoolOptions) {
    this.reaper = setInterval(() => this.reapIdle(), Math.min(opts.idleTimeoutMs, 30000));
    this.reaper.unref();
  }

  get shardId(): number {
    return this.opts.shardId;
  }

  stats() {
    return {
      shard: this.opts.shardId,
      size: this.opts.size,
      open: this.all.size,
      idle: this.idle.length,
      active: this.all.size - this.idle.length,
      waiting: this.waiters.length,
      connecting: this.connecting,
      acquired: this.totalAcquired,
      lastError: this.lastError?.message ?? null,
    };
  }

  servers(): PooledServer[] {
    return [...this.all];
  }

  /** Synchronous fast path: an idle healthy connection, or null. */
  tryAcquire(): PooledServer | null {
    while (this.idle.length > 0) {
      const s = this.idle.pop()!;
      if (s.broken) {
        this.all.delete(s);
        continue;
      }
      return this.lend(s);
    }
    return null;
  }

  /** Like tryAcquire, but the most recently used idle connection that `fits` (pipeline lanes: same session settings). */
  tryAcquireMatching(fits: (s: PooledServer) => boolean): PooledServer | null {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const s = this.idle[i]!;
      if (s.broken || !fits(s)) continue;
      this.idle.splice(i, 1);
      return this.lend(s);
    }
    return null;
  }

  /** An idle connection taken out of `idle` goes to a client (or a lane). */
  private lend(s: PooledServer): PooledServer {
    this.totalAcquired++;
    s.lastUsed = Date.now();
    return s;
  }

  acquire(): Promise<PooledServer> {
    if (this.closed) return Promise.reject(new PoolError('POOL_CLOSED', 'the proxy is shutting down', { sqlstate: '57P01' }));
    const s = this.tryAcquire();
    if (s) return Promise.resolve(s);
    const started = Date.now();
    return new Promise<PooledServer>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (srv) => {
          this.totalAcquired++;
          this.totalWaitMs += Date.now() - started;
          resolve(srv);
        },
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new PoolError('POOL_TIMEOUT', `no server connection to shard ${this.opts.shardId} became free within ${this.opts.waitTimeoutMs} ms (pool size ${this.opts.size})`, {
            sqlstate: '53300', hint: 'raise pool.size or shorten transactions',
          }));
        }, this.opts.waitTimeoutMs),
      };
      this.waiters.push(waiter);
      this.grow();
    });
  }

  /** Open connections while there are waiters and room. */
  private grow(): void {
    while (this.waiters.length > this.connecting && this.all.size + this.connecting < this.opts.size) {
      this.connecting++;
      ServerConnection.connect({
        host: this.opts.host, port: this.opts.port, user: this.opts.user, password: this.opts.password,
        database: this.opts.database, params: { application_name: 'pgtide' }, connectTimeoutMs: this.opts.connectTimeoutMs ?? 5000,
      }).then((conn) => {
        this.connecting--;
        this.lastError = null;
        const s = new PooledServer(conn, this.opts.shardId, this);
        this.all.add(s);
        if (conn.leftover && conn.leftover.length > 0) this.onServerData(s, conn.leftover);
        this.handOver(s);
      }, (err: Error) => {
        this.connecting--;
        this.lastError = err;
        // A shard that refuses connections fails every waiter now rather than at their deadline.
        const e = err instanceof PgtideError ? err : new PoolError('SHARD_UNREACHABLE', `shard ${this.opts.shardId} (${this.opts.host}:${this.opts.port}) is unreachable: ${err.message}`, { sqlstate: '08006' });
        const waiters = this.waiters.splice(0);
        for (const w of waiters) {
          clearTimeout(w.timer);
          w.reject(e);
        }
      });
    }
  }

  private handOver(s: PooledServer): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      s.lastUsed = Date.now();
      w.resolve(s);
    } else {
      s.lastUsed = Date.now();
      this.idle.push(s);
    }
  }

  /** Give a clean, idle ('I') connection back. */
  release(s: PooledServer): void {
    s.sink = null;
    if (s.broken || this.closed) {
      this.discard(s);
      return;
    }
    this.handOver(s);
  }

  /** Drop a connection whose state is unknown (client vanished mid-transaction, protocol trouble). */
  discard(s: PooledServer): void {
    s.sink = null;
    this.all.delete(s);
    const i = this.idle.indexOf(s);
    if (i >= 0) this.idle.splice(i, 1);
    s.destroy();
    if (this.waiters.length > 0) this.grow();
  }

  // Idle connections may still receive async messages: notices, parameter changes, or a FATAL
  // (admin shutdown). Anything but a notice means the connection can no longer be trusted.
  onServerData(server: PooledServer, chunk: Buffer): void {
    const scanner = new BackendScanner();
    scanner.push(chunk);
    for (let m = scanner.next(); m; m = scanner.next()) {
      if (m.code === BackendCode.NoticeResponse || m.code === BackendCode.ParameterStatus || m.code === BackendCode.NotificationResponse) continue;
      this.discard(server);
      return;
    }
  }

  onServerClosed(server: PooledServer): void {
    this.discard(server);
  }

  private reapIdle(): void {
    const deadline = Date.now() - this.opts.idleTimeoutMs;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const s = this.idle[i]!;
      if (s.lastUsed < deadline) {
        this.idle.splice(i, 1);
        this.all.delete(s);
        s.destroy();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new PoolError('POOL_CLOSED', 'the proxy is shutting down', { sqlstate: '57P01' }));
    }
    for (const s of this.all) s.destroy();
    this.all.clear();
    this.idle.length = 0;
  }
}
