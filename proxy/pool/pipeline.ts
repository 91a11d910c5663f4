// Pipelining: fast autocommit reads of many clients share a server connection ("lane"), written
// back to back (one write per event-loop turn) and answered in order, each reply ending at its
// ReadyForQuery. The server reads several queries per wakeup and the proxy writes one batch where
// it wrote one query per client. Measured with bench/proxy/mux-experiment (pgbench -S, 8 clients,
// a minimal Node proxy): one shared connection 1.65x the TPS of a bare pipe with a connection per
// client, two 1.20x, four 0.89x; PgBouncer reaches 1.22-1.29x the pipe on this machine. So lanes
// are filled before a new one is opened. A lane whose head statement has run longer than
// `stuckMs` takes no more statements (head-of-line blocking is bounded by what the session lets
// in: only statement shapes that have always been fast, see client-session.ts). A lane carries reads
// of one table only: a keyed read waits only on a table lock (row locks do not block it, and
// locking reads are writes to the router), so a DDL lock on one table never holds up another's.
//
// Cancel. A server-side cancel hits whatever statement the backend runs when the signal lands,
// and on a lane that may be the next client's. So a cancelled statement is answered at once
// (57014) and its reply is dropped; the server is signalled only for a head that has run past
// `stuckMs` (it blocks the lane: a lock wait, a plan gone bad). Then the lane takes nothing new,
// the replies of the statements behind the target are held until they end, one that the signal
// hit instead (57014) is run again for its client on a server of its own, and a lane whose signal
// was never seen to land is discarded rather than pooled (it could still land later).
import { BackendCode, errorSqlstate, isFatalError, readyForQueryStatus, tagRowCount } from '../protocol/backend-scanner.js';
import type { PooledServer, ServerSink } from './pooled-server.js';
import type { ShardPool } from './shard-pool.js';

/** One statement in a lane: the session that sent it hears its reply. */
export interface PipelinedUnit {
  /**
   * Complete messages of the reply, in order (called one or more times), read from `server`: a
   * client that cannot take more pauses that socket until it drains (the lane waits with it).
   */
  pipelineData(bytes: Buffer, server: PooledServer): void;
  /** The reply ended (ReadyForQuery): rows from its CommandComplete tags; `ranMs` since it reached the head of its lane. */
  pipelineDone(rows: number, ranMs: number): void;
  /** The server connection broke before the reply ended. */
  pipelineLost(): void;
  /** Another statement's cancel hit this one on the server: run it again elsewhere (nothing of its reply was sent). */
  pipelineRetry(): void;
}

const QUERY_CANCELED = '57014';

/**
 * What to write for one statement on a given lane server: a named prepared statement needs its
 * Parse (and maybe a Close of the statement it evicts) first on a server that lacks it. `swallow`
 * counts those injected messages, whose ParseComplete/CloseComplete the client must not see.
 */
export type UnitBytes = (server: PooledServer) => { bytes: Buffer; swallow: number };

interface Entry {
  unit: PipelinedUnit;
  /** Leading ParseComplete/CloseComplete replies to injected messages, still to drop. */
  swallow: number;
  /** Cancelled: its client was answered, the rest of its reply is dropped. */
  detached: boolean;
  /** Reply messages held back while a cancel signal may hit this statement. */
  held: Buffer[] | null;
  /** The held reply carried 57014: run it again. */
  hit: boolean;
}

interface Lane {
  server: PooledServer;
  /** The table its statements read (reassigned when the lane is empty). */
  table: string;
  queue: Entry[];
  /** When the statement at the head of the queue started (performance.now()). */
  headSince: number;
  /** Bytes of an incomplete message carried to the next chunk. */
  partial: Buffer | null;
  rows: number;
  corked: boolean;
  /** A cancel signal was sent to this lane's server; `landed` once a 57014 showed where it hit. */
  signal: { target: Entry; landed: boolean } | null;
  /**
   * A statement changed a reported setting (ParameterStatus: set_config() in a SELECT): the
   * server no longer holds the settings its lane was chosen for. It takes nothing new, and is
   * discarded when its queue is done.
   */
  tainted: boolean;
  /** Sum of the entries' `swallow` (0 almost always: the per-message check is skipped). */
  swallowing: number;
}

export interface PipelineOptions {
  /** Most statements waiting in one lane. */
  maxDepth: number;
  /** A lane whose head has run this long takes no new statements, ms. */
  stuckMs: number;
}

export class ShardPipeline implements ServerSink {
  private readonly lanes: Lane[] = [];
  private readonly byServer = new Map<PooledServer, Lane>();
  /** A statement wanted a lane and found no server for one. */
  private demand = false;

  constructor(private readonly pool: ShardPool, private readonly opts: PipelineOptions) {}

  /** Statements waiting or running in lanes now. */
  get depth(): number {
    let n = 0;
    for (const l of this.lanes) n += l.queue.length;
    return n;
  }

  /**
   * Queue one Query message on a lane whose server `fits` (session settings), opening one from the
   * pool's idle connections if none has room. false: no lane can take it now (the caller links a
   * server as usual).
   */
  submit(unit: PipelinedUnit, build: UnitBytes, table: string, now: number, fits: (server: PooledServer) => boolean): boolean {
    let lane: Lane | null = null;
    for (const l of this.lanes) {
      if (l.signal || l.tainted || (l.table !== table && l.queue.length > 0) || l.queue.length >= this.opts.maxDepth || (l.queue.length > 0 && now - l.headSince > this.opts.stuckMs) || !fits(l.server)) continue;
      // The fullest lane with room: batches grow, and fewer servers are woken.
      if (!lane || l.queue.length > lane.queue.length) lane = l;
    }
    if (!lane) {
      const server = this.pool.tryAcquireMatching(fits);
      if (!server) {
        // Every connection is busy: the next one a session frees opens a lane (adopt).
        this.demand = true;
        return false;
      }
      lane = this.open(server, now);
    }
    lane.table = table;
    if (lane.queue.length === 0) lane.headSince = now;
    const server = lane.server;
    const { bytes, swallow } = build(server);
    lane.queue.push({ unit, swallow, detached: false, held: null, hit: false });
    lane.swallowing += swallow;
    server.queries++;
    server.unnamedKey = null; // a simple Query drops the unnamed statement; an extended unit may replace it
    if (!lane.corked) {
      // Every Query of this event-loop turn leaves in one write.
      lane.corked = true;
      server.socket.cork();
      process.nextTick(uncork, lane);
    }
    server.write(bytes);
    return true;
  }

  /**
   * The client of `unit` asked to cancel it. false: it is not in a lane. Otherwise the caller
   * answers the client with 57014 now; the statement's reply is dropped when it comes.
   */
  cancel(unit: PipelinedUnit, now: number): boolean {
    for (const lane of this.lanes) {
      const i = lane.queue.findIndex((e) => e.unit === unit);
      if (i < 0) continue;
      const entry = lane.queue[i]!;
      entry.detached = true;
      entry.held = null;
      if (i === 0 && !lane.signal && now - lane.headSince >= this.opts.stuckMs) {
        // It holds up the lane: stop it on the server. Whoever is behind it may be hit instead.
        lane.signal = { target: entry, landed: false };
        for (const e of lane.queue) if (e !== entry && !e.detached) e.held = [];
        lane.server.conn.cancel().catch(() => {
          // Not delivered: the statement runs to its end; nothing can land late either.
          if (lane.signal?.target === entry) lane.signal.landed = true;
        });
      }
      return true;
    }
    return false;
  }

  /**
   * A session's linked server is free again. When statements found no server for a lane, it opens
   * one instead of going back to the pool (where the next waiting session would take it: with
   * every connection busy a lane could never open). Unused by the end of this turn, it goes back.
   */
  adopt(server: PooledServer): boolean {
    if (!this.demand) return false;
    this.demand = false;
    const lane = this.open(server, performance.now());
    setImmediate(() => {
      if (lane.queue.length === 0 && this.byServer.get(server) === lane) this.retire(lane, false);
    });
    return true;
  }

  /** A new, empty lane on `server` (its replies now come here). */
  private open(server: PooledServer, now: number): Lane {
    const lane: Lane = { server, table: '', queue: [], headSince: now, partial: null, rows: 0, corked: false, signal: null, tainted: false, swallowing: 0 };
    server.sink = this;
    this.lanes.push(lane);
    this.byServer.set(server, lane);
    return lane;
  }

  onServerData(server: PooledServer, chunk: Buffer): void {
    const lane = this.byServer.get(server);
    if (!lane) return;
    const buf = lane.partial ? Buffer.concat([lane.partial, chunk]) : chunk;
    lane.partial = null;
    let from = 0;
    let at = 0;
    while (at + 5 <= buf.length) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      if (end > buf.length) break;
      const code = buf[at]!;
      if (lane.swallowing > 0 && lane.queue[0] !== undefined && lane.queue[0].swallow > 0) {
        const head = lane.queue[0];
        head.swallow--;
        lane.swallowing--;
        if (code === BackendCode.ParseComplete || code === BackendCode.CloseComplete) {
          if (at > from) deliver(lane, head, buf.subarray(from, at));
          from = end;
          at = end;
          continue;
        }
        // The injected Parse failed: its error is the statement's, but the server's list of
        // prepared statements is no longer what the pool believes. Not reused.
        lane.swallowing -= head.swallow;
        head.swallow = 0;
        lane.tainted = true;
      }
      if (code === BackendCode.ErrorResponse && isFatalError(buf, at, end)) {
        // The server is going away (terminated, shut down): its FATAL would tell the head client's
        // driver that its own connection died. Every queued statement gets a plain 08006 instead.
        if (at > from) deliver(lane, lane.queue[0], buf.subarray(from, at));
        this.retire(lane, true);
        return;
      }
      if (code === BackendCode.CommandComplete) lane.rows += tagRowCount(buf, at, end);
      else if (code === BackendCode.ParameterStatus) lane.tainted = true;
      if (code === BackendCode.ErrorResponse && lane.signal && errorSqlstate(buf, at, end) === QUERY_CANCELED) {
        // Where the signal landed: on its target, or on a statement behind it (run again).
        lane.signal.landed = true;
        const head = lane.queue[0];
        if (head && head !== lane.signal.target && head.held) head.hit = true;
      }
      if (code === BackendCode.ReadyForQuery) {
        const entry = lane.queue.shift();
        const status = readyForQueryStatus(buf, at);
        const rows = lane.rows;
        lane.rows = 0;
        const now = performance.now();
        const ranMs = now - lane.headSince;
        lane.headSince = now;
        if (entry) {
          deliver(lane, entry, buf.subarray(from, end));
          if (entry.hit) entry.unit.pipelineRetry();
          else if (!entry.detached) {
            if (entry.held) for (const b of entry.held) entry.unit.pipelineData(b, lane.server);
            entry.unit.pipelineDone(rows, ranMs);
          }
        }
        from = end;
        if (status !== 'I' || !entry) {
          // An autocommit read cannot leave a transaction open; a server that says otherwise (or
          // answers a statement nobody sent) is not safe for the statements queued behind it.
          this.retire(lane, true);
          return;
        }
      }
      at = end;
    }
    if (at > from) deliver(lane, lane.queue[0], buf.subarray(from, at));
    if (at < buf.length) lane.partial = Buffer.from(buf.subarray(at));
    // A signal that never showed where it landed may still be on its way: that server is not reused.
    if (lane.queue.length === 0 && lane.partial === null) this.retire(lane, lane.tainted || (lane.signal !== null && !lane.signal.landed));
  }

  onServerClosed(server: PooledServer): void {
    const lane = this.byServer.get(server);
    if (lane) this.retire(lane, true);
  }

  /** Take the lane out; its server goes back to the pool (clean) or is discarded with its queue failed. */
  private retire(lane: Lane, broken: boolean): void {
    this.byServer.delete(lane.server);
    const i = this.lanes.indexOf(lane);
    if (i >= 0) this.lanes.splice(i, 1);
    const queued = lane.queue.splice(0);
    if (broken) {
      this.pool.discard(lane.server);
      for (const e of queued) if (!e.detached) e.unit.pipelineLost();
    } else {
      this.pool.release(lane.server);
    }
  }
}

/** Reply bytes of the statement at the head: to its client, held back, or dropped (cancelled). */
function deliver(lane: Lane, entry: Entry | undefined, bytes: Buffer): void {
  if (!entry || entry.detached || bytes.length === 0) return;
  if (entry.held) entry.held.push(Buffer.from(bytes));
  else entry.unit.pipelineData(bytes, lane.server);
}

function uncork(lane: Lane): void {
  lane.corked = false;
  lane.server.socket.uncork();
}
