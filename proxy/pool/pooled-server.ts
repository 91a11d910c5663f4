// One pooled server connection: its socket, what is prepared on it, and which client it serves now.
import type { ServerConnection } from '../backend/server-connection.js';

/** Whoever is linked to a server receives its bytes (a client session, or the pool when idle). */
export interface ServerSink {
  onServerData(server: PooledServer, chunk: Buffer): void;
  onServerClosed(server: PooledServer, err: Error | null): void;
}

/** Most named statements one server connection keeps before the oldest is closed (PgBouncer's default is 200). */
export const MAX_PREPARED_PER_SERVER = 500;

export class PooledServer {
  sink: ServerSink | null = null;
  /** Global statement ids prepared on this connection, oldest first (Map keeps insertion order: an LRU). */
  readonly prepared = new Map<number, true>();
  /** Key (types + SQL) of the unnamed statement this server holds, if we know it is still there. */
  unnamedKey: string | null = null;
  /** Session settings applied on this connection: GUC name → the SET statement that set it. Absent = default. */
  readonly settings = new Map<string, string>();
  broken = false;
  lastUsed = Date.now();
  /** Transaction status from the last ReadyForQuery. */
  txStatus: 'I' | 'T' | 'E' = 'I';
  queries = 0;

  constructor(readonly conn: ServerConnection, readonly shardId: number, onIdleData: ServerSink) {
    this.sink = null;
    const socket = conn.socket;
    socket.on('data', (chunk: Buffer) => (this.sink ?? onIdleData).onServerData(this, chunk));
    socket.on('error', () => {
      this.broken = true;
    });
    socket.on('close', () => {
      this.broken = true;
      (this.sink ?? onIdleData).onServerClosed(this, null);
    });
  }

  get id(): number {
    return this.conn.id;
  }

  get socket() {
    return this.conn.socket;
  }

  write(buf: Buffer): boolean {
    return this.conn.socket.write(buf);
  }

  /** Remember that `statementId` is now prepared here; returns the id to evict (close) if over capacity. */
  notePrepared(statementId: number): number | null {
    this.prepared.set(statementId, true);
    if (this.prepared.size <= MAX_PREPARED_PER_SERVER) return null;
    const oldest = this.prepared.keys().next().value as number;
    this.prepared.delete(oldest);
    return oldest;
  }

  hasPrepared(statementId: number): boolean {
    if (!this.prepared.has(statementId)) return false;
    // Refresh its place in the LRU.
    this.prepared.delete(statementId);
    this.prepared.set(statementId, true);
    return true;
  }

  destroy(): void {
    this.broken = true;
    this.conn.socket.destroy();
  }
}
