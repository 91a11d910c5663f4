// One application client after login: routes its statements to shards and relays the answers.
//
// The hot path: a simple Query is framed, its shape looked up in the route cache, the owning
// shard's pooled server linked, and the client's bytes written to it untouched; the server's
// bytes go back untouched too, while a header scan watches for ReadyForQuery to know when the
// transaction ended and the server can go back to the pool (transaction pooling).
//
// A unit of work is one simple Query, or one batch of extended-protocol messages up to Sync or
// Flush. While a unit is in flight the client's further messages wait in the reader (bounded by
// pausing the socket), so replies never interleave. Each linked server has a queue of Steps
// (see steps.ts) saying how to treat each reply; statements that span shards run as a fan-out
// whose replies are merged (rows concatenated, counts summed) into one answer.
import type { Socket } from 'node:net';
import { PgtideError } from '../../config/errors.js';
import { firstKeyText, keyedPartition, resolveRowShards, type BoundParams, type StatementPlan } from '../router/index.js';
import { partsToHash, type HashParts } from '../../config/hash.js';
import type { ProxyContext, SessionHandle } from '../context.js';
import type { ActiveHold } from '../holds.js';
import type { RoutingIndex } from '../../config/routing.js';
import type { PooledServer, ServerSink } from '../pool/pooled-server.js';
import type { PipelinedUnit, UnitBytes } from '../pool/pipeline.js';
import {
  BackendCode, BackendScanner, commandCompleteTag, isFatalError, readyForQueryStatus, parseErrorFields, tagRowCount,
} from '../protocol/backend-scanner.js';
import * as bw from '../protocol/backend-writer.js';
import { toErrorFields, ProtocolError } from '../protocol/errors.js';
import { FrontendCode, type FrontendMessage, type FrontendReader } from '../protocol/frontend-reader.js';
import { parseBind, parseClose, parseDescribe, parseParse, parseQuery } from '../protocol/frontend-messages.js';
import { buildBind, buildClose, buildDescribe, buildParse, buildQuery, rewriteBindStatement, rewriteDescribeStatement } from '../protocol/frontend-writer.js';
import { insertSelectRewriter } from './insert-select.js';
import { splitInsertRows } from './insert-split.js';
import { parseSetval, shardSetvalSql } from './setval.js';
import { ScatterMerger, ScatterPlanCache, StrayFilterCache, type ScatterPlan } from '../scatter/index.js';
import { copyInSetup, CopyOutMerger, ShardedCopyIn } from '../copy/index.js';
import { routeOf } from './route.js';
import { sameSettings, syncSettings } from './session-settings.js';
import { TwoPhaseCoordinator } from '../twophase/coordinator.js';

/** SQLSTATE of the mover's fence: the shard no longer owns the key (see mover/errors.ts). */
const FENCE_SQLSTATE = 'PT001';
import { StatementRegistry, type RegisteredStatement } from './statement-registry.js';
import {
  BIND_FORWARD, CLOSE_FORWARD, CLOSE_SWALLOW, DESCRIBE_FORWARD, EXECUTE_FORWARD, QUERY_FORWARD, QUERY_SWALLOW,
  StepKind, SYNC_FORWARD, endsAtReady, isSwallow, type InternalResult, type Step,
} from './steps.js';

/** Pause reading from the client when this much is buffered while a unit is in flight. */
const MAX_BUFFERED_INPUT = 1 << 20;

export class SessionError extends PgtideError {}

/** A client statement known by name (or the unnamed one). */
interface ClientStatement {
  reg: RegisteredStatement;
  key: string;
  plans: StatementPlan[];
  literals: string[];
  /** The client's own Parse bytes (unnamed statements are forwarded as sent). */
  parseBytes: Buffer;
}

/** An extended-protocol message with the statement it names. */
interface PlannedMessage {
  msg: FrontendMessage;
  stmt?: ClientStatement;
  name?: string;
}

/** A server linked to this client, with the replies still expected from it. */
interface Link {
  server: PooledServer;
  shardId: number;
  steps: Step[];
  head: number;
  scanner: BackendScanner;
  /** Sent a Query/Sync whose ReadyForQuery has not come yet. */
  busy: boolean;
}

const BEGIN = buildQuery('BEGIN');

/** A server's ErrorResponse fields as an error the client sees unchanged. */
function serverError(fields: Record<string, string>): PgtideError {
  return new PgtideError('SERVER_ERROR', fields.M ?? 'error on a shard', { sqlstate: fields.C ?? 'XX000', ...(fields.D ? { detail: fields.D } : {}), ...(fields.H ? { hint: fields.H } : {}) });
}

/** Whether a ReadyForQuery is still due on this link (a Query or Sync step is pending). */
function awaitsReady(link: Link): boolean {
  for (let i = link.head; i < link.steps.length; i++) if (endsAtReady(link.steps[i]!.kind)) return true;
  return false;
}

/** Merges the replies of one statement run on several shards into one answer. */
interface FanOut {
  /** Shards that have not sent their final ReadyForQuery yet. */
  pending: number;
  /** The shard whose acknowledgements and row description the client sees. */
  leader: Link | null;
  /** The leader's row description (or first row) went out: other shards' rows may follow. */
  headerDone: boolean;
  held: Buffer[];
  rows: number;
  tagVerb: string | null;
  error: Buffer | null;
  copyOutSent: boolean;
  /** COPY … TO STDOUT: one header line / binary header and trailer for all shards' streams. */
  copyOut?: CopyOutMerger;
  /** Forward only the first shard's tag as is (DDL). */
  kind: 'rows' | 'ddl';
  /** A scatter read merged by the proxy (ORDER BY, aggregates…); null: rows are concatenated. */
  merger: ScatterMerger | null;
  /** Position of each link among the fan-out's shards (the merger's shard numbers). */
  index: Map<Link, number>;
  /** Extended protocol: the client sent a Describe (else the one the proxy added is swallowed). */
  describeToClient: boolean;
  extended: boolean;
  /**
   * An autocommit write that spans shards: the proxy opened a transaction on every shard and
   * commits them together (two-phase when enabled) or rolls them all back when one failed.
   */
  implicitTx: boolean;
}

/** Scatter plans, shared by every session (the planner parses; plans depend only on text and tables). */
const scatterPlans = new ScatterPlanCache();
/** Per-shard texts that leave out rows a shard holds without owning them (a move under way). */
const strayFilters = new StrayFilterCache();

/** Fan-outs that read or change rows of sharded tables, so a shard's strays would be counted. */
function seesRows(plan: StatementPlan): boolean {
  return plan.kind === 'scatter-read' || plan.kind === 'keyed' || plan.kind === 'copy' || (plan.kind === 'broadcast' && plan.reason === 'write-without-key');
}

/** A statement that changes rows (not DDL or utility commands, which cannot always run in a transaction block). */
function isDataWrite(plan: StatementPlan): boolean {
  if (plan.kind === 'insert-rows' || plan.kind === 'insert-select') return true;
  if (plan.kind === 'keyed') return plan.write;
  return plan.kind === 'broadcast' && (plan.reason === 'write-without-key' || plan.reason === 'reference-write');
}

/** DDL that may run in a transaction block (see the router's ddlRunsInTransaction). */
function isAtomicDdl(plan: StatementPlan): boolean {
  return plan.kind === 'broadcast' && plan.reason === 'ddl' && plan.atomic === true;
}

/** A read that may span shards and so needs the scatter planner (keyed reads with IN lists too). */
function isScatterRead(plan: StatementPlan): boolean {
  return plan.kind === 'scatter-read' || (plan.kind === 'keyed' && !plan.write);
}

/** The plan of a statement that is one keyed read (pipelining candidates), or null. */
function soleKeyedRead(plans: StatementPlan[]): { table: string } | null {
  const p = plans.length === 1 ? plans[0]! : null;
  return p !== null && p.kind === 'keyed' && !p.write ? p : null;
}

/**
 * What an extended batch writes on a shared (lane) server, or null when it cannot share one. Two
 * forms leave no state a later statement of its client needs on that connection:
 * - Parse, Bind, [Describe], Execute, Sync of the unnamed statement and portal (node-postgres,
 *   libpq's PQexecParams, pgbench -M extended), forwarded verbatim;
 * - Bind of a named statement the client prepared before, [Describe portal], Execute, Sync
 *   (pgbench -M prepared, pgjdbc and psycopg once they prepare): the server's copy of the
 *   statement is parsed there first if missing, as on a linked server.
 */
function pipelinableBatch(planned: PlannedMessage[]): UnitBytes | null {
  const n = planned.length;
  const code = (i: number) => planned[i]!.msg.code;
  const bytes = (i: number) => planned[i]!.msg.bytes;
  if (n < 3 || n > 5 || code(n - 2) !== FrontendCode.Execute || code(n - 1) !== FrontendCode.Sync || bytes(n - 2)[5] !== 0) return null;
  if (code(0) === FrontendCode.Parse) {
    if (n < 4 || code(1) !== FrontendCode.Bind || planned[0]!.name !== '' || planned[1]!.name !== '' || bytes(1)[5] !== 0) return null;
    if (n === 5 && (code(2) !== FrontendCode.Describe || bytes(2)[6] !== 0)) return null;
    const all = Buffer.concat(planned.map((p) => p.msg.bytes));
    return () => ({ bytes: all, swallow: 0 });
  }
  if (code(0) !== FrontendCode.Bind || planned[0]!.name === '' || bytes(0)[5] !== 0) return null;
  // Only a portal Describe: a statement Describe would name the client's statement.
  if (n === 4 && (code(1) !== FrontendCode.Describe || bytes(1)[5] !== 0x50 || bytes(1)[6] !== 0)) return null;
  if (n === 5) return null;
  const reg = planned[0]!.stmt!.reg;
  const tail = Buffer.concat([rewriteBindStatement(bytes(0), reg.serverName), ...planned.slice(1).map((p) => p.msg.bytes)]);
  return (server) => {
    if (server.hasPrepared(reg.id)) return { bytes: tail, swallow: 0 };
    const evicted = server.notePrepared(reg.id);
    const parts = evicted !== null ? [buildClose('S', `pgtide_${evicted}`), reg.parseBytes, tail] : [reg.parseBytes, tail];
    return { bytes: Buffer.concat(parts), swallow: parts.length - 1 };
  };
}

/**
 * Per statement shape (the router's cached analysis object), how long its statements took: only
 * shapes that have always been fast are pipelined, so a slow one never holds up a shared lane.
 */
const shapeLatency = new WeakMap<object, { n: number; ewmaUs: number }>();
/** A shape is pipelined after this many runs… */
const PIPELINE_AFTER_RUNS = 3;
/** …while its smoothed latency (send to ReadyForQuery, at the proxy) stays under this (µs). */
const PIPELINE_FAST_US = 5000;

export class ClientSession implements ServerSink, SessionHandle, PipelinedUnit {
  readonly connectedAt = Date.now();
  readonly applicationName: string;
  private readonly links = new Map<number, Link>();
  private readonly linkByServer = new Map<PooledServer, Link>();
  private readonly statements = new Map<string, ClientStatement>();
  private unnamed: ClientStatement | null = null;
  /** Extended-protocol messages collected until Sync/Flush. */
  private batch: FrontendMessage[] = [];
  /** After an error inside a Flush-terminated batch, drop messages until Sync (protocol rule). */
  private skipUntilSync = false;
  /** A unit is in flight: further client messages wait in the reader. */
  private busy = false;
  /** The shape of the unit in flight when it is a single keyed read (its latency feeds shapeLatency). */
  private unitShape: object | null = null;
  /** When the unit's statement was written to its linked server (its shape's latency counts from here). */
  private shapeSentAt = 0;
  /** The shard of the unit in flight in a pipeline lane, or -1. */
  private pipelinedShard = -1;
  /** A lane's server paused because this client's socket was full (resumed on drain or close). */
  private pausedLane: PooledServer | null = null;
  /** How to send that unit on a linked server instead (when a cancel meant for another hit it). */
  private pipelinedSend: ((link: Link) => void) | null = null;
  private readonly fitsSettings = (server: PooledServer): boolean => sameSettings(server.settings, this.settings);
  private inCopyIn = false;
  /**
   * The client's BEGIN (and SAVEPOINTs right after it), held until the first statement that
   * names a shard tells where the transaction lives; replayed there before that statement.
   */
  private held: Buffer[] = [];
  /** The proxy failed a statement inside the transaction: only ROLLBACK gets through (25P02). */
  private clientFailed = false;
  /** The last extended batch ended with Flush: keep the server linked (portals, unnamed statement). */
  private holdForFlush = false;
  private fanOut: FanOut | null = null;
  /** Two-phase commit for transactions that touch several shards (config default, or SET pgtide.two_phase_commit). */
  private twoPhase: boolean;
  /** How this transaction began (BEGIN …, SAVEPOINTs), replayed on a shard that joins it later. */
  private txPrefix: Buffer[] = [];
  /** A distributed COMMIT/ROLLBACK is running its internal round trips. */
  private orchestrating = false;
  /** While a fan-out sends its first messages: every shard it links joins the client's transaction. */
  private fanOutJoinsTx = false;
  /** SQL PREPARE ran inside the transaction: its servers hold client state and are not pooled again. */
  private sqlPrepared = false;
  /** A statement waiting for a cutover hold on its range to be released. */
  private deferred: FrontendMessage[] | null = null;
  /**
   * What the open transaction touched: (key space, hash, shard, write or not) of keyed statements,
   * or whole key spaces (hash null); `seq` is RangeHolds.now when it was noted (before or during a hold).
   */
  private txTouched: { keyspaceId: number; hash: bigint | null; shard: number; write: boolean; seq: number }[] = [];
  /** The unit in flight, kept so a write that hit a moved range's fence can be retried on the new owner. */
  private retryUnit: FrontendMessage[] | null = null;
  /** The unit in flight hit the fence (SQLSTATE PT001) before anything reached the client. */
  private fenced = false;
  private unitWritten = 0;
  /** A COPY FROM STDIN running on several shards (it owns the linked servers' replies meanwhile). */
  private shardedCopy: ShardedCopyIn | null = null;
  private closed = false;
  private paused = false;
  private unitStarted = 0;
  // What the access recorder counts for the unit in flight (see noteAccess).
  private recSlot = -1;
  private recTable: string | null = null;
  private recWrite = false;
  private recRows = 0;
  private recBytesIn = 0;
  private recBytesOut = 0;
  private recError = false;
  private recording = false;
  // The key of the statement in flight, read only when the recorder keeps it as a sample.
  private samplePlan: Extract<StatementPlan, { kind: 'keyed' }> | null = null;
  private sampleLiterals: readonly string[] = [];
  private sampleBound: BoundParams | null = null;
  private readonly sampleKeyText = (): string | null => (this.samplePlan ? firstKeyText(this.samplePlan, this.sampleLiterals, this.sampleBound) : null);
  private readonly hashSlot: HashParts = { hi: 0, lo: 0 };

  constructor(
    private readonly ctx: ProxyContext,
    private readonly socket: Socket,
    private readonly reader: FrontendReader,
    readonly user: string,
    readonly database: string,
    readonly secret: Buffer,
    /** The client's session settings: GUC name → SET statement (startup params + session SETs). */
    private readonly settings: Map<string, string>,
    readonly remote: string,
    readonly pid: number,
  ) {
    this.applicationName = /TO '(.*)'$/.exec(settings.get('application_name') ?? '')?.[1] ?? '';
    this.twoPhase = ctx.twoPhaseDefault;
    ctx.sessions.set(this.pid, this);
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('close', () => this.cleanup());
    socket.on('error', () => this.cleanup());
    socket.on('drain', () => this.onClientDrain());
  }

  // ---- SessionHandle ----

  state(): string {
    if (this.closed) return 'closed';
    if (this.inCopyIn) return 'copy';
    if (this.busy) return 'active';
    return this.txStatus() === 'I' ? 'idle' : 'idle in transaction';
  }

  linkedServers() {
    return [...this.links.values()].map((l) => ({
      shardId: l.shardId, host: this.ctx.pool(l.shardId).opts.host, port: this.ctx.pool(l.shardId).opts.port,
      pid: l.server.conn.pid, secret: l.server.conn.secret,
    }));
  }

  terminate(): void {
    this.write(bw.errorResponse({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' }));
    this.socket.end();
    this.cleanup();
  }

  /** Start serving: process whatever the reader already holds (bytes that followed the login). */
  start(): void {
    this.pump();
  }

  // ---- client input ----

  private onClientData(chunk: Buffer): void {
    this.ctx.counters.bytesIn += chunk.length;
    this.reader.push(chunk);
    this.pump();
    if (this.busy && !this.inCopyIn && this.reader.pendingBytes > MAX_BUFFERED_INPUT && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private pump(): void {
    while (!this.closed && (!this.busy || this.inCopyIn)) {
      let msg: FrontendMessage | undefined;
      try {
        msg = this.reader.next();
      } catch (err) {
        this.fatal(err);
        return;
      }
      if (!msg) break;
      try {
        this.handle(msg);
      } catch (err) {
        if (err instanceof ProtocolError) {
          this.fatal(err);
          return;
        }
        this.failUnit(err);
      }
    }
    if (!this.busy && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private handle(msg: FrontendMessage): void {
    const code = msg.code;
    if (this.inCopyIn) {
      this.handleCopyIn(msg);
      return;
    }
    if (this.skipUntilSync) {
      if (code === FrontendCode.Sync) {
        this.skipUntilSync = false;
        if (this.holdForFlush && this.links.size > 0) {
          // The held server is waiting for Sync too (it skips input after an error).
          this.batch = [msg];
          this.runBatch();
        } else {
          this.write(bw.readyForQuery(this.txStatus()));
        }
      }
      return;
    }
    switch (code) {
      case FrontendCode.Query:
        this.handleQuery(msg);
        return;
      case FrontendCode.Parse:
      case FrontendCode.Bind:
      case FrontendCode.Describe:
      case FrontendCode.Execute:
      case FrontendCode.Close:
        this.batch.push(msg);
        return;
      case FrontendCode.Sync:
      case FrontendCode.Flush:
        this.batch.push(msg);
        this.runBatch();
        return;
      case FrontendCode.Terminate:
        this.onTerminate();
        return;
      case FrontendCode.CopyData:
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        // Stray copy messages outside COPY: the server would ignore them too.
        return;
      case FrontendCode.FunctionCall:
        throw new SessionError('FUNCTION_CALL', 'the fast-path function call protocol is not supported through pgtide', { sqlstate: '0A000' });
      default:
        throw new ProtocolError(`unexpected message type "${String.fromCharCode(code)}"`);
    }
  }

  // ---- transaction state ----

  private txStatus(): 'I' | 'T' | 'E' {
    if (this.clientFailed) return 'E';
    let status: 'I' | 'T' | 'E' = this.held.length > 0 ? 'T' : 'I';
    for (const l of this.links.values()) {
      if (l.server.txStatus === 'E') return 'E';
      if (l.server.txStatus === 'T') status = 'T';
    }
    return status;
  }

  /** The shard the open transaction lives on, if any. */
  private pinnedShard(): number | null {
    for (const l of this.links.values()) if (l.server.txStatus !== 'I') return l.shardId;
    if (this.holdForFlush && this.links.size === 1) return this.links.values().next().value!.shardId;
    return null;
  }

  // ---- simple query ----

  private handleQuery(msg: FrontendMessage): void {
    this.ctx.counters.queries++;
    const sql = parseQuery(msg.bytes);
    const { analysis, literals } = this.ctx.router.analyze(sql);
    const plans = analysis.plans;
    if (plans.length === 0) {
      this.write(bw.emptyQueryResponse());
      this.write(bw.readyForQuery(this.txStatus()));
      return;
    }
    for (const p of plans) {
      if (p.kind === 'unsupported') throw new SessionError('UNSUPPORTED_STATEMENT', p.message, { sqlstate: p.sqlstate });
    }
    const first = plans[0]!;
    // One failed shard fails the whole distributed transaction, as one server would.
    if (this.clientFailed || (this.txStatus() === 'E' && this.txLinks().length > 1)) {
      if (plans.length === 1 && first.kind === 'transaction' && (first.op === 'rollback' || first.op === 'commit' || first.op === 'rollback-to')) {
        this.endFailedTransaction(first.op);
        return;
      }
      throw new SessionError('IN_FAILED_TRANSACTION', 'current transaction is aborted, commands ignored until end of transaction block', { sqlstate: '25P02' });
    }
    if (plans.length === 1 && first.kind === 'transaction' && this.handleHeldTransaction(first.op, msg)) return;
    if (plans.length === 1 && first.kind === 'transaction' && this.txLinks().length > 1) {
      this.distributedTransactionControl(first.op, sql, (tag, err) => {
        this.write(err ? bw.errorResponse(toErrorFields(err)) : bw.commandComplete(tag!));
      });
      return;
    }
    if (plans.length === 1 && first.kind === 'session' && this.handleSessionLocally(first, sql)) return;

    if (this.ctx.holds.active && this.heldBy(plans, literals, null)) {
      this.defer([msg]);
      return;
    }
    if (plans.length === 1 && first.kind === 'unsharded' && first.tables.length === 0 && this.txStatus() === 'I' && this.setvalEverywhere(sql)) return;
    const target = this.targetShards(plans, literals, null);
    this.noteAccess(plans, literals, null, msg.bytes.length);
    this.noteTouched(plans, literals, null);
    // An autocommit statement, or the first statement of a transaction (its BEGIN is replayed
    // with it), may be retried on the new owner if it hits a moved range's fence.
    this.retryUnit = this.txLinks().length === 0 && !this.clientFailed ? [msg] : null;
    if (target.fanout) {
      this.runFanOut(plans[0]!, target.shards, msg, sql, literals, plans.every(isAtomicDdl));
      return;
    }
    const shardId = target.shards[0]!;
    const keyedRead = soleKeyedRead(plans);
    this.unitShape = keyedRead ? analysis : null;
    const send = (link: Link): void => {
      this.prepareLink(link);
      link.server.unnamedKey = null;
      this.shapeSentAt = performance.now();
      this.sendToLink(link, msg.bytes, QUERY_FORWARD);
      if (plans.length === 1 && first.kind === 'session' && first.op === 'set' && first.name) this.pendingSetting = { name: first.name, sql };
    };
    if (keyedRead && this.pipeline(shardId, keyedRead.table, () => ({ bytes: msg.bytes, swallow: 0 }), send)) return;
    this.withLink(shardId, send);
  }

  /** A session-level SET to remember once it succeeded (replayed on other servers in transaction mode). */
  private pendingSetting: { name: string; sql: string } | null = null;

  /** BEGIN/COMMIT/ROLLBACK with no server linked yet are answered by the proxy. */
  private handleHeldTransaction(op: string, msg: FrontendMessage): boolean {
    const linked = this.pinnedShard() !== null;
    if (op === 'begin' && !linked && this.held.length === 0 && this.txStatus() === 'I') {
      this.held = [Buffer.from(msg.bytes)];
      // A new transaction has touched nothing yet: the last one's keys must not count as in flight
      // (they let its statements slip past a cutover hold onto a fenced source: PT001 at the client).
      this.txTouched.length = 0;
      this.ctx.counters.transactions++;
      this.write(bw.commandComplete('BEGIN'));
      this.write(bw.readyForQuery('T'));
      return true;
    }
    if (this.held.length > 0 && !linked && (op === 'savepoint' || op === 'release' || op === 'rollback-to')) {
      // Nothing ran yet: the savepoint is replayed with the BEGIN wherever the transaction lands.
      this.held.push(Buffer.from(msg.bytes));
      this.write(bw.commandComplete(op === 'savepoint' ? 'SAVEPOINT' : op === 'release' ? 'RELEASE' : 'ROLLBACK'));
      this.write(bw.readyForQuery('T'));
      return true;
    }
    if ((op === 'commit' || op === 'rollback') && this.held.length > 0 && !linked) {
      this.held = [];
      this.write(bw.commandComplete(op === 'commit' ? 'COMMIT' : 'ROLLBACK'));
      this.write(bw.readyForQuery('I'));
      return true;
    }
    if (op === 'begin' && this.txStatus() !== 'I') {
      this.write(bw.noticeResponse({ severity: 'WARNING', code: '25001', message: 'there is already a transaction in progress' }));
      this.write(bw.commandComplete('BEGIN'));
      this.write(bw.readyForQuery(this.txStatus()));
      return true;
    }
    if ((op === 'commit' || op === 'rollback') && !linked && this.txStatus() === 'I') {
      this.write(bw.noticeResponse({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' }));
      this.write(bw.commandComplete(op === 'commit' ? 'COMMIT' : 'ROLLBACK'));
      this.write(bw.readyForQuery('I'));
      return true;
    }
    return false;
  }

  /** Session commands that transaction pooling answers itself (they would leak across clients). */
  private handleSessionLocally(plan: Extract<StatementPlan, { kind: 'session' }>, sql: string): boolean {
    if (plan.op === 'set' && plan.name === 'pgtide.two_phase_commit') {
      // pgtide's own setting: answered here, never sent to a shard.
      const m = /=\s*'?(on|off|true|false|1|0)'?\s*;?\s*$|\bto\s+'?(on|off|true|false|1|0)'?\s*;?\s*$/i.exec(sql);
      const v = (m?.[1] ?? m?.[2])?.toLowerCase();
      if (!v) throw new SessionError('BAD_SETTING', 'pgtide.two_phase_commit must be on or off', { sqlstate: '22023' });
      const on = v === 'on' || v === 'true' || v === '1';
      if (on && !this.ctx.twoPhase) throw new SessionError('NO_COORDINATOR', 'two-phase commit needs the catalog, which this proxy has not reached yet', { sqlstate: '55000' });
      if (!on && this.txLinks().length > 1) throw new SessionError('BAD_SETTING', 'cannot turn two-phase commit off inside a transaction that spans several shards', { sqlstate: '25001' });
      this.twoPhase = on;
      this.write(bw.commandComplete('SET'));
      this.write(bw.readyForQuery(this.txStatus()));
      return true;
    }
    if (this.ctx.poolMode === 'session') return false;
    switch (plan.op) {
      case 'discard':
        if (/^\s*discard\s+all\s*;?\s*$/i.test(sql)) {
          if (this.txStatus() !== 'I') throw new SessionError('DISCARD_IN_TRANSACTION', 'DISCARD ALL cannot run inside a transaction block', { sqlstate: '25001' });
          this.statements.clear();
          this.unnamed = null;
          this.settings.clear();
          this.write(bw.commandComplete('DISCARD ALL'));
          this.write(bw.readyForQuery('I'));
          return true;
        }
        return false;
      case 'reset':
        if (/^\s*reset\s+all\s*;?\s*$/i.test(sql) && this.txStatus() === 'I') {
          this.settings.clear();
          this.write(bw.commandComplete('RESET'));
          this.write(bw.readyForQuery('I'));
          return true;
        }
        if (plan.name && this.txStatus() === 'I') {
          this.settings.delete(plan.name);
          this.write(bw.commandComplete('RESET'));
          this.write(bw.readyForQuery('I'));
          return true;
        }
        return false;
      case 'deallocate':
        if (/^\s*deallocate\s+(prepare\s+)?all\s*;?\s*$/i.test(sql)) {
          this.statements.clear();
          this.write(bw.commandComplete('DEALLOCATE ALL'));
          this.write(bw.readyForQuery(this.txStatus()));
          return true;
        }
        if (this.txStatus() !== 'I') return false;
        throw new SessionError('SQL_PREPARE_IN_TRANSACTION_POOLING', 'SQL-level PREPARE/EXECUTE/DEALLOCATE do not survive transaction pooling', {
          sqlstate: '0A000', hint: 'use protocol-level prepared statements (every driver does), or pool.mode: session',
        });
      case 'prepare':
      case 'execute':
        // Inside a transaction the server stays ours (pg_dump PREPAREs its catalog queries there);
        // the statement would outlive it, so that server is closed instead of pooled afterwards.
        if (this.txStatus() !== 'I') {
          this.sqlPrepared = true;
          return false;
        }
        throw new SessionError('SESSION_STATE_IN_TRANSACTION_POOLING', `${plan.op.toUpperCase()} outside a transaction block needs a dedicated server session, which transaction pooling does not give`, {
          sqlstate: '0A000', hint: 'use protocol-level prepared statements, run it inside BEGIN … COMMIT, or pool.mode: session',
        });
      case 'listen':
      case 'unlisten':
        throw new SessionError('SESSION_STATE_IN_TRANSACTION_POOLING', `${plan.op.toUpperCase()} needs a dedicated server session, which transaction pooling does not give`, {
          sqlstate: '0A000', hint: plan.op === 'listen' || plan.op === 'unlisten' ? 'connect with pool.mode: session for LISTEN' : 'use protocol-level prepared statements, or pool.mode: session',
        });
      default:
        return false;
    }
  }

  private endFailedTransaction(op: string): void {
    const linked = [...this.links.values()].filter((l) => l.server.txStatus !== 'I');
    if (linked.length > 1) {
      this.clientFailed = false;
      this.distributedTransactionControl('rollback', '', (tag, err) => {
        this.write(err ? bw.errorResponse(toErrorFields(err)) : bw.commandComplete(tag!));
      });
      return;
    }
    this.clientFailed = false;
    this.held = [];
    if (op === 'rollback-to' || linked.length === 0) {
      // Nothing reached a server (or a savepoint rollback the server would accept): answer here.
      if (linked.length === 0) {
        this.write(bw.commandComplete('ROLLBACK'));
        this.write(bw.readyForQuery('I'));
        return;
      }
    }
    const link = linked[0]!;
    // COMMIT of a failed transaction is a ROLLBACK in Postgres too, and its tag says so.
    this.sendToLink(link, op === 'rollback-to' ? buildQuery('ROLLBACK') : buildQuery('ROLLBACK'), QUERY_FORWARD);
  }

  // ---- cutover holds, in-flight tracking, fence retry ----

  /**
   * Must these plans wait for a cutover hold? For each hold (key space K, range, source shard S)
   * that this session's transaction is not exempt from (inFlightFor: the cutover waits for it):
   * - any statement on the held range, or on K where the proxy cannot tell the hash (fan-outs,
   *   inserts of rows, COPY, keyed statements on several partitions);
   * - inside a transaction (open, BEGIN held, or opened by this very query), also a keyed write
   *   on another range of K that lives on S. It would take a lock on K's table on S that the
   *   transaction keeps while a later statement of it waits for the hold, and the fence's LOCK
   *   TABLE (SHARE ROW EXCLUSIVE) on S waits for that lock: the cutover ran out of lock_timeout
   *   (pgbench TPC-B: the account on S's other partition, then the branch on the held range).
   *   Reads there run (their ACCESS SHARE / ROW SHARE locks do not conflict with the fence's), and
   *   so do autocommit writes: their locks end with them, the fence's LOCK just queues behind.
   */
  private heldBy(plans: StatementPlan[], literals: readonly string[], bound: BoundParams | null, batchBegins = false): boolean {
    const index = this.ctx.routing();
    const inTx = batchBegins || this.txStatus() !== 'I' || this.held.length > 0 || plans.some((p) => p.kind === 'transaction' && p.op === 'begin');
    for (const h of this.ctx.holds.list()) {
      if (this.caughtBy(h, plans, literals, bound, inTx, index) && !this.inFlightFor(h)) return true;
    }
    return false;
  }

  private caughtBy(h: ActiveHold, plans: StatementPlan[], literals: readonly string[], bound: BoundParams | null, inTx: boolean, index: RoutingIndex): boolean {
    for (const plan of plans) {
      if (plan.kind === 'keyed') {
        if (index.table(plan.table)?.keyspaceId !== h.keyspaceId) continue;
        const p = keyedPartition(plan, literals, bound, index, this.hashSlot);
        if (!p) return true;
        const hash = partsToHash(this.hashSlot);
        if (hash >= h.lo && hash < h.hi) return true;
        if (inTx && plan.write && (h.source === null || p.shardId === h.source)) return true;
      } else if (plan.kind === 'insert-rows' || plan.kind === 'insert-select' || plan.kind === 'copy') {
        if (index.table(plan.table)?.keyspaceId === h.keyspaceId) return true;
      } else if (plan.kind === 'scatter-read' || plan.kind === 'broadcast') {
        for (const t of plan.tables) if (index.table(t)?.keyspaceId === h.keyspaceId) return true;
      }
    }
    return false;
  }

  /** Park these messages until the hold is released; they then run by the newest routing version. */
  private defer(messages: FrontendMessage[]): void {
    this.deferred = messages;
    this.busy = true;
    this.ctx.holds.onRelease(() => {
      const d = this.deferred;
      this.deferred = null;
      if (d) this.rerun(d);
    });
  }

  /** Run a parked unit (a simple Query, or an extended batch ending in Sync) now, then go on. */
  private rerun(unit: FrontendMessage[]): void {
    this.busy = false;
    if (this.closed) return;
    try {
      if (unit.length === 1 && unit[0]!.code === FrontendCode.Query) this.handle(unit[0]!);
      else {
        this.batch = unit;
        this.runBatch();
      }
    } catch (err) {
      this.failUnit(err);
      return;
    }
    this.pump();
  }

  /** Remember which keys the open transaction touched (for the mover's wait for in-flight work). */
  private noteTouched(plans: StatementPlan[], literals: readonly string[], bound: BoundParams | null): void {
    if (this.txStatus() === 'I' && this.held.length === 0) {
      this.txTouched.length = 0;
      // An autocommit statement is in flight only while busy; transactions are what we track.
      if (!plans.some((p) => p.kind === 'transaction' && p.op === 'begin')) return;
    }
    this.recordTouches(plans, literals, bound);
  }

  /** The same for the statements of one extended batch (its implicit transaction counts too). */
  private noteTouchedBatch(statements: { plans: StatementPlan[]; literals: readonly string[]; bound: BoundParams }[]): void {
    if (this.txStatus() === 'I' && this.held.length === 0) this.txTouched.length = 0;
    for (const st of statements) this.recordTouches(st.plans, st.literals, st.bound);
  }

  private recordTouches(plans: StatementPlan[], literals: readonly string[], bound: BoundParams | null): void {
    const index = this.ctx.routing();
    for (const plan of plans) {
      if (plan.kind === 'keyed') {
        const info = index.table(plan.table);
        if (info?.keyspaceId === undefined) continue;
        const p = keyedPartition(plan, literals, bound, index, this.hashSlot);
        this.txTouched.push({ keyspaceId: info.keyspaceId, hash: p ? partsToHash(this.hashSlot) : null, shard: p ? p.shardId : -1, write: plan.write, seq: this.ctx.holds.now });
      } else if (plan.kind === 'insert-rows' || plan.kind === 'insert-select' || plan.kind === 'scatter-read' || plan.kind === 'broadcast' || plan.kind === 'copy') {
        const tables = 'tables' in plan ? plan.tables : [plan.table];
        for (const t of tables) {
          const ks = index.table(t)?.keyspaceId;
          if (ks !== undefined) this.txTouched.push({ keyspaceId: ks, hash: null, shard: -1, write: true, seq: this.ctx.holds.now });
        }
      }
    }
  }

  /**
   * SessionHandle: the cutover behind hold `h` waits for this client's open transaction (and does
   * not hold its statements, or it would wait for itself until its budget ran out), because it
   * - touched the held range, or key space K where the hash was unknown (any time: during the hold
   *   only an exempt transaction gets there), or
   * - wrote K on the hold's source shard before the hold was placed: it holds a lock on K's table
   *   there, which the fence's LOCK TABLE would wait for. (A transaction that did not is held at
   *   its first write to K there, see heldBy, so it never takes such a lock during the hold, and
   *   this answer never turns from false to true while the hold lasts.)
   */
  inFlightFor(h: ActiveHold): boolean {
    // A transaction's first statement in flight counts too: its held BEGIN went out with it, and the
    // server says 'T' only when that BEGIN is answered (missed, a transaction that then read the
    // range on the fenced source wrote there next: PT001 at the client). A parked unit does not.
    const inFlight = this.busy && this.deferred === null;
    if (this.txStatus() === 'I' && this.held.length === 0 && !inFlight) return false;
    for (const t of this.txTouched) {
      if (t.keyspaceId !== h.keyspaceId) continue;
      if (t.hash === null || (t.hash >= h.lo && t.hash < h.hi)) return true;
      if (t.write && t.seq < h.seq && (h.source === null || t.shard === h.source)) return true;
    }
    return false;
  }

  /**
   * The unit hit the fence of a range that moved: nothing reached the client, so reload the
   * routing table and run it again; it lands on the new owner and the client sees only success.
   */
  private retryFenced(): void {
    const unit = this.retryUnit!;
    this.fenced = false;
    this.retryUnit = null;
    // The first statement of a transaction failed with the BEGIN replayed before it: that server
    // transaction is aborted and held nothing else, so drop it and hold the BEGIN again.
    for (const [shardId, link] of this.links) {
      if (link.server.txStatus !== 'I' && this.txPrefix.length > 0) {
        this.detach(shardId, link);
        this.ctx.pool(shardId).discard(link.server);
        this.held = this.txPrefix;
        this.txPrefix = [];
        // What it touched is noted again when it reruns (then, maybe, while a hold is up).
        this.txTouched.length = 0;
      }
    }
    this.releaseIdleLinks();
    this.ctx.counters.fenceRetries++;
    const reload = this.ctx.reloadRouting ? this.ctx.reloadRouting() : Promise.resolve();
    reload.catch(() => {}).then(() => this.rerun(unit));
  }

  // ---- distributed transactions (two-phase commit) ----

  /** Links whose server is inside this client's transaction. */
  private txLinks(): Link[] {
    const out: Link[] = [];
    for (const l of this.links.values()) if (l.server.txStatus !== 'I') out.push(l);
    return out;
  }

  /** Run SQL on a linked server for the proxy's own purposes; resolves at its ReadyForQuery. */
  private internal(link: Link, sql: string): Promise<InternalResult> {
    return new Promise((resolve) => {
      this.sendToLink(link, buildQuery(sql), { kind: StepKind.Internal, internal: { tag: null, error: null, done: resolve } });
    });
  }

  /**
   * COMMIT, ROLLBACK or a savepoint command in a transaction that spans several shards. Savepoint
   * commands go to every shard of the transaction; COMMIT runs two-phase commit (PREPARE on all,
   * durable decision in the catalog, COMMIT PREPARED on all); a failure anywhere rolls back all.
   * `reply` writes the command's answer; the ReadyForQuery follows here.
   */
  private distributedTransactionControl(op: string, sql: string, reply: (tag: string | null, err: unknown) => void): void {
    this.busy = true;
    this.orchestrating = true;
    this.unitStarted = performance.now();
    const links = this.txLinks();
    const run = async (): Promise<{ tag: string | null; err: unknown }> => {
      if (op === 'prepare-transaction') {
        return { tag: null, err: new SessionError('PREPARE_DISTRIBUTED', 'PREPARE TRANSACTION is not supported in a transaction that spans several shards: pgtide runs two-phase commit itself', { sqlstate: '0A000' }) };
      }
      if (op === 'savepoint' || op === 'release' || op === 'rollback-to' || op === 'set-local' || op === 'set-transaction') {
        const results = await Promise.all(links.map((l) => this.internal(l, sql)));
        const failed = results.find((r) => r.error);
        if (failed) return { tag: null, err: serverError(failed.error!) };
        return { tag: results[0]!.tag, err: null };
      }
      if (op === 'rollback') {
        await Promise.all(links.map((l) => this.internal(l, 'ROLLBACK')));
        return { tag: 'ROLLBACK', err: null };
      }
      return this.commitLinks(links, false);
    };
    run().then(({ tag, err }, ) => this.endDistributed(tag, err, reply), (err: unknown) => this.endDistributed(null, err, reply));
  }

  /**
   * Commit the transactions open on `links` together: two-phase commit when it is on. Without it
   * an explicit transaction block never reaches here with several shards (0A000 before), but an
   * autocommit write does (`plainCommit`): its shards COMMIT one after the other, so an error rolls
   * all back, and only a crash between two COMMITs could leave it half applied.
   */
  private async commitLinks(links: Link[], plainCommit: boolean): Promise<{ tag: string | null; err: unknown }> {
    const failedTx = this.clientFailed || links.some((l) => l.server.txStatus === 'E');
    if (failedTx || ((!this.twoPhase || !this.ctx.twoPhase) && !plainCommit)) {
      await Promise.all(links.map((l) => this.internal(l, 'ROLLBACK')));
      return { tag: 'ROLLBACK', err: null };
    }
    if (!this.twoPhase || !this.ctx.twoPhase) {
      const done: number[] = [];
      for (const [i, l] of links.entries()) {
        const r = await this.internal(l, 'COMMIT');
        if (r.error || r.tag !== 'COMMIT') {
          await Promise.all(links.slice(i + 1).map((x) => this.internal(x, 'ROLLBACK')));
          if (done.length === 0) return { tag: null, err: r.error ? serverError(r.error) : new SessionError('COMMIT_FAILED', `shard ${l.shardId} rolled back the transaction; it was rolled back on every shard`, { sqlstate: '40001' }) };
          return { tag: null, err: new SessionError('PARTIAL_COMMIT', `the statement committed on shard${done.length > 1 ? 's' : ''} ${done.join(', ')} but failed to commit on shard ${l.shardId}${r.error ? `: ${r.error.M ?? ''}` : ''}`, {
            sqlstate: '40003', hint: 'turn on two-phase commit (two_phase_commit: true) to make writes that span shards atomic even when a commit fails',
          }) };
        }
        done.push(l.shardId);
      }
      return { tag: 'COMMIT', err: null };
    }
    const coordinator = this.ctx.twoPhase;
    const base = coordinator.newBase();
    const gid = (l: Link) => `'${TwoPhaseCoordinator.gid(base, l.shardId)}'`;
    const prepared = await Promise.all(links.map((l) => this.internal(l, `PREPARE TRANSACTION ${gid(l)}`)));
    const ok = prepared.map((r) => !r.error && r.tag === 'PREPARE TRANSACTION');
    if (process.env.PGTIDE_TEST_CRASH === 'after-prepare') process.kill(process.pid, 'SIGKILL');
    if (!ok.every(Boolean)) {
      await Promise.all(links.map((l, i) => (ok[i] ? this.internal(l, `ROLLBACK PREPARED ${gid(l)}`) : this.internal(l, 'ROLLBACK'))));
      const e = prepared.find((r) => r.error)?.error;
      return { tag: null, err: e ? serverError(e) : new SessionError('PREPARE_FAILED', 'a shard could not prepare the transaction; it was rolled back on every shard', { sqlstate: '40001' }) };
    }
    try {
      await coordinator.decideCommit(base, links.map((l) => l.shardId));
    } catch (err) {
      await Promise.all(links.map((l) => this.internal(l, `ROLLBACK PREPARED ${gid(l)}`)));
      return { tag: null, err: new SessionError('COMMIT_DECISION_FAILED', `could not record the commit decision in the catalog (${(err as Error).message}); the transaction was rolled back on every shard`, { sqlstate: '08006' }) };
    }
    // Point of no return: the decision is durable; recovery finishes the commit if we die now.
    if (process.env.PGTIDE_TEST_CRASH === 'after-decision') process.kill(process.pid, 'SIGKILL');
    const committed = await Promise.all(links.map((l) => this.internal(l, `COMMIT PREPARED ${gid(l)}`)));
    if (committed.every((r) => !r.error)) await coordinator.forget(base);
    else this.ctx.log.warn({ gid: base }, 'COMMIT PREPARED failed on a shard; recovery will finish it');
    return { tag: 'COMMIT', err: null };
  }

  private endDistributed(tag: string | null, err: unknown, reply: (tag: string | null, err: unknown) => void): void {
    this.orchestrating = false;
    if (this.closed) return;
    if (!err) {
      this.clientFailed = false;
      this.txPrefix = [];
    } else if (this.txStatus() !== 'I') {
      this.clientFailed = true;
    }
    reply(tag, err);
    this.write(bw.readyForQuery(this.txStatus()));
    this.busy = false;
    this.releaseIdleLinks();
    this.pump();
  }

  // ---- routing ----

  /** Which shards a unit runs on, checked against the open transaction. */
  private targetShards(plans: StatementPlan[], literals: string[], params: BoundParams | null): { shards: number[]; fanout: boolean; any?: boolean } {
    const index = this.ctx.routing();
    const wanted = new Set<number>();
    let any = true;
    let fanout = false;
    for (const plan of plans) {
      const r = routeOf(plan, literals, params, index);
      if (r === 'any') continue;
      any = false;
      if (r === 'all') {
        for (const id of index.dataShardIds()) wanted.add(id);
        fanout = true;
      } else {
        for (const id of r) wanted.add(id);
      }
    }
    const pinned = this.pinnedShard();
    if (any) {
      const shard = pinned ?? (this.links.size > 0 ? this.links.keys().next().value! : index.primaryShardId);
      return { shards: [shard], fanout: false, any: true };
    }
    const shards = [...wanted].sort((a, b) => a - b);
    if (shards.length > 1) fanout = true;
    if (shards.length === 1) fanout = false;
    if (pinned !== null && (shards.length !== 1 || shards[0] !== pinned) && !this.twoPhase) {
      throw new SessionError('CROSS_SHARD_TRANSACTION', `this statement needs shard${shards.length > 1 ? 's' : ''} ${shards.join(', ')} but the open transaction lives on shard ${pinned}`, {
        sqlstate: '0A000',
        detail: 'pgtide pins a transaction to the shard of its first statement; a transaction may not touch several shards unless two-phase commit is enabled',
        hint: 'keep each transaction on one shard key, or enable two-phase commit (two_phase_commit: true in the config, or SET pgtide.two_phase_commit = on)',
      });
    }
    if (fanout && this.txStatus() !== 'I' && !this.twoPhase) {
      throw new SessionError('CROSS_SHARD_TRANSACTION', `this statement runs on shards ${shards.join(', ')}, which a transaction block cannot span without two-phase commit`, {
        sqlstate: '0A000', hint: 'run it outside the transaction block, or give it a shard key',
      });
    }
    if (fanout && plans.length > 1) {
      throw new SessionError('MULTI_STATEMENT_FANOUT', 'a multi-statement query string must stay on one shard, since it runs as one implicit transaction', {
        sqlstate: '0A000', hint: 'send the statements one by one',
      });
    }
    return { shards, fanout };
  }

  // ---- access recording ----

  /** Decide what the recorder will count for this unit (one statement: its partition, or its tables). */
  private noteAccess(plans: StatementPlan[], literals: readonly string[], bound: BoundParams | null, bytesIn: number): void {
    const rec = this.ctx.recorder;
    this.recording = false;
    if (!rec.enabled || plans.length !== 1) return;
    const plan = plans[0]!;
    this.recRows = 0;
    this.recBytesOut = 0;
    this.recBytesIn = bytesIn;
    this.recError = false;
    this.recSlot = -1;
    this.recTable = null;
    if (plan.kind === 'keyed') {
      const p = keyedPartition(plan, literals, bound, this.ctx.routing(), this.hashSlot);
      this.recWrite = plan.write;
      if (p) {
        this.recSlot = rec.slot(p.id, plan.table);
        this.samplePlan = plan;
        this.sampleLiterals = literals;
        this.sampleBound = bound;
        rec.sample(plan.table, p.id, this.hashSlot.hi, this.hashSlot.lo, this.sampleKeyText);
        this.samplePlan = null;
        this.sampleBound = null;
      } else {
        this.recTable = plan.table;
      }
      this.recording = true;
    } else if (plan.kind === 'scatter-read' || plan.kind === 'broadcast') {
      this.recTable = plan.tables[0] ?? null;
      this.recWrite = plan.kind === 'broadcast';
      this.recording = this.recTable !== null;
    } else if (plan.kind === 'insert-rows' || plan.kind === 'insert-select') {
      this.recTable = plan.table;
      this.recWrite = true;
      this.recording = true;
    }
  }

  private finishRecording(now = performance.now()): void {
    if (!this.recording) return;
    this.recording = false;
    const latencyUs = (now - this.unitStarted) * 1000;
    if (this.recSlot >= 0) this.ctx.recorder.record(this.recSlot, this.recWrite, this.recRows, this.recBytesIn, this.recBytesOut, latencyUs, this.recError);
    else if (this.recTable !== null) this.ctx.recorder.recordAll(this.recTable, this.recWrite, this.recBytesIn, latencyUs, this.recError);
  }

  // ---- pipelining (proxy/pool/pipeline.ts) ----

  /** The unit's statement ran `ms` on its server: remember it for its shape (only single keyed reads have one). */
  private noteShape(ms: number): void {
    const shape = this.unitShape;
    if (shape === null) return;
    this.unitShape = null;
    const us = ms * 1000;
    const st = shapeLatency.get(shape);
    if (!st) shapeLatency.set(shape, { n: 1, ewmaUs: us });
    else {
      st.n++;
      st.ewmaUs += (us - st.ewmaUs) * 0.2;
    }
  }

  /**
   * An autocommit keyed read of a shape that has always been fast goes to the shard's pipeline
   * (a server shared with other clients' such reads) instead of a server of its own. Not inside
   * a transaction, during a cutover hold, or when no lane's server has this session's settings.
   */
  private pipeline(shardId: number, table: string, build: UnitBytes, send: (link: Link) => void): boolean {
    if (this.links.size > 0 || this.held.length > 0 || this.clientFailed || this.ctx.holds.active) return false;
    const st = shapeLatency.get(this.unitShape!);
    if (!st || st.n < PIPELINE_AFTER_RUNS || st.ewmaUs > PIPELINE_FAST_US) return false;
    const lanes = this.ctx.pipeline?.(shardId);
    if (!lanes) return false;
    const now = performance.now();
    if (!lanes.submit(this, build, table, now, this.fitsSettings)) return false;
    this.busy = true;
    this.unitStarted = now;
    this.unitWritten = 0;
    this.pipelinedShard = shardId;
    this.pipelinedSend = send;
    this.ctx.counters.pipelined++;
    this.ctx.counters.perShard.set(shardId, (this.ctx.counters.perShard.get(shardId) ?? 0) + 1);
    return true;
  }

  pipelineData(bytes: Buffer, server: PooledServer): void {
    this.ctx.counters.bytesOut += bytes.length;
    this.recBytesOut += bytes.length;
    if (!this.write(bytes) && this.pausedLane === null) {
      // A large reply to a slow client: stop reading the lane's server (as for a linked one)
      // rather than buffer the rest here. The statements behind it wait, as on the server.
      this.pausedLane = server;
      server.socket.pause();
    }
  }

  pipelineDone(rows: number, ranMs: number): void {
    const now = performance.now();
    this.ctx.counters.latency.observe(this.leaveLane().shardId, (now - this.unitStarted) / 1000, now);
    if (this.recording) this.recRows += rows;
    // Its own run at the head of the lane, not its wait behind other clients' statements.
    this.noteShape(ranMs);
    this.finishRecording(now);
    this.busy = false;
    if (!this.closed) this.pump();
  }

  pipelineRetry(): void {
    const { shardId, send } = this.leaveLane();
    if (!this.closed) this.withLink(shardId, send!);
  }

  cancelPipelined(): boolean {
    const shardId = this.pipelinedShard;
    if (shardId < 0 || !this.ctx.pipeline?.(shardId)?.cancel(this, performance.now())) return false;
    this.leaveLane();
    this.failUnit(new SessionError('QUERY_CANCELED', 'canceling statement due to user request', { sqlstate: '57014' }));
    return true;
  }

  /** The unit in flight is no longer in a lane: where it was, and how to send it on a linked server. */
  private leaveLane(): { shardId: number; send: ((link: Link) => void) | null } {
    const left = { shardId: this.pipelinedShard, send: this.pipelinedSend };
    this.pipelinedShard = -1;
    this.pipelinedSend = null;
    return left;
  }

  pipelineLost(): void {
    const shard = this.leaveLane().shardId;
    this.failUnit(new SessionError('SERVER_LOST', `lost the connection to shard ${shard} before the statement's result arrived; it may or may not have run`, { sqlstate: '08006' }));
  }

  // ---- links ----

  /** Link the shard's server (from the pool unless already linked) and run `fn` with it. */
  private withLink(shardId: number, fn: (link: Link) => void): void {
    this.busy = true;
    this.unitStarted = performance.now();
    this.unitWritten = 0;
    const existing = this.links.get(shardId);
    if (existing) {
      fn(existing);
      return;
    }
    const pool = this.ctx.pool(shardId);
    const server = pool.tryAcquire();
    if (server) {
      fn(this.attach(shardId, server));
      return;
    }
    pool.acquire().then((s) => {
      if (this.closed) {
        pool.release(s);
        return;
      }
      try {
        fn(this.attach(shardId, s));
      } catch (err) {
        this.failUnit(err);
      }
    }, (err: unknown) => this.failUnit(err));
  }

  private attach(shardId: number, server: PooledServer): Link {
    server.sink = this;
    const link: Link = { server, shardId, steps: [], head: 0, scanner: new BackendScanner(), busy: false };
    this.links.set(shardId, link);
    this.linkByServer.set(server, link);
    return link;
  }

  /** Before the first statement on a freshly linked server: settings sync and the held BEGIN. */
  private prepareLink(link: Link): void {
    if (this.ctx.poolMode === 'transaction' || link.server.queries === 0) {
      const sync = syncSettings(link.server.settings, this.settings);
      if (sync) this.sendToLink(link, buildQuery(sync), QUERY_SWALLOW);
    }
    if (link.server.txStatus === 'I') {
      if (this.held.length > 0) {
        this.txPrefix = this.held;
        this.held = [];
        for (const stmt of this.txPrefix) this.sendToLink(link, stmt, QUERY_SWALLOW);
      } else if ((this.twoPhase && this.txLinks().length > 0) || this.fanOutJoinsTx) {
        // A shard joining a distributed transaction starts it the way the client did. (In a
        // fan-out the first shard's BEGIN has not been answered yet, so txLinks() cannot tell.)
        for (const stmt of this.txPrefix.length > 0 ? this.txPrefix : [BEGIN]) this.sendToLink(link, stmt, QUERY_SWALLOW);
      }
    }
  }

  private sendToLink(link: Link, bytes: Buffer, step: Step): void {
    link.steps.push(step);
    if (endsAtReady(step.kind)) link.busy = true;
    link.server.queries++;
    this.ctx.counters.perShard.set(link.shardId, (this.ctx.counters.perShard.get(link.shardId) ?? 0) + 1);
    if (!link.server.write(bytes)) this.pauseClientFor(link.server);
  }

  private pauseClientFor(server: PooledServer): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
    server.socket.once('drain', () => {
      if (this.paused && !this.busy) return;
      this.paused = false;
      this.socket.resume();
    });
  }

  /** Release links the transaction no longer needs (transaction pooling). */
  private releaseIdleLinks(): void {
    if (this.ctx.poolMode === 'session' || this.holdForFlush) return;
    for (const [shardId, link] of this.links) {
      if (link.server.txStatus === 'I' && link.head >= link.steps.length) {
        this.detach(shardId, link);
        // It may have been paused for this client's back-pressure; the next client needs it flowing.
        link.server.socket.resume();
        if (this.sqlPrepared) this.ctx.pool(shardId).discard(link.server);
        else if (!this.ctx.pipeline?.(shardId)?.adopt(link.server)) this.ctx.pool(shardId).release(link.server);
      }
    }
    if (this.links.size === 0) this.sqlPrepared = false;
  }

  private detach(shardId: number, link: Link): void {
    this.links.delete(shardId);
    this.linkByServer.delete(link.server);
  }

  // ---- server replies ----

  onServerData(server: PooledServer, chunk: Buffer): void {
    const link = this.linkByServer.get(server);
    if (!link) return;
    this.ctx.counters.bytesOut += chunk.length;
    this.recBytesOut += chunk.length;
    const scanner = link.scanner;
    try {
      if (this.shardedCopy) {
        this.shardedCopy.onServerData(link.shardId, chunk);
        return;
      }
      scanner.push(chunk);
      if (this.fanOut) this.relayFanOut(link);
      else this.relay(link);
    } catch (err) {
      // A server that breaks the protocol cannot be trusted with anyone's data.
      this.ctx.log.error({ err, shard: link.shardId }, 'server protocol error');
      this.detach(link.shardId, link);
      this.ctx.pool(link.shardId).discard(server);
      this.failUnit(new SessionError('SERVER_PROTOCOL', `shard ${link.shardId} sent a malformed reply: ${(err as Error).message}`, { sqlstate: '08P01' }));
    }
  }

  /**
   * Advance `link`'s steps past one server message and say whether the client should see it.
   * Synth steps at the head are not handled here (the caller emits them first).
   */
  private consume(link: Link, code: number, buf: Buffer, start: number, end: number): boolean {
    const step = link.steps[link.head];
    if (code === BackendCode.NoticeResponse || code === BackendCode.NotificationResponse || !step) return true;
    const swallow = isSwallow(step.kind);
    if (step.kind === StepKind.Internal) {
      const r = step.internal!;
      if (code === BackendCode.CommandComplete) r.tag = commandCompleteTag(buf, start, end);
      else if (code === BackendCode.ErrorResponse) r.error ??= parseErrorFields(buf, start, end);
      else if (code === BackendCode.ReadyForQuery) {
        link.head++;
        link.busy = awaitsReady(link);
        link.server.txStatus = readyForQueryStatus(buf, start);
        r.done({ tag: r.tag, error: r.error });
      }
      return false;
    }
    if (code === BackendCode.ParameterStatus) return !swallow;
    if (code === BackendCode.CommandComplete && this.recording) this.recRows += tagRowCount(buf, start, end);
    if (code === BackendCode.ErrorResponse && this.retryUnit !== null && this.fanOut === null && this.unitWritten === 0 && !this.fenced && parseErrorFields(buf, start, end).C === FENCE_SQLSTATE) {
      // A stale route: the range moved and the old owner's fence refused the write. Retry below.
      this.fenced = true;
      if (step.kind !== StepKind.QueryForward && step.kind !== StepKind.QuerySwallow) this.onExtendedError(link, step);
      return false;
    }
    if (code === BackendCode.ErrorResponse && isFatalError(buf, start, end)) {
      // The server is going away (terminated, shut down): forwarded, its FATAL would tell the
      // client's driver that the client's own connection died. onServerClosed answers with 08006.
      return false;
    }
    if (code === BackendCode.ErrorResponse) {
      this.ctx.counters.errors++;
      this.recError = true;
      // Errors always reach the client, even from an injected step: it must know.
      if (step.kind === StepKind.QuerySwallow) {
        this.ctx.log.warn({ shard: link.shardId, error: parseErrorFields(buf, start, end) }, 'injected statement failed');
      }
      if (step.kind === StepKind.QueryForward || step.kind === StepKind.QuerySwallow) {
        this.pendingSetting = null;
        return true; // the ReadyForQuery still follows
      }
      this.onExtendedError(link, step);
      return true;
    }
    switch (step.kind) {
      case StepKind.QueryForward:
      case StepKind.QuerySwallow:
        if (code === BackendCode.CopyInResponse) this.inCopyIn = true;
        if (code === BackendCode.ReadyForQuery) {
          link.head++;
          link.busy = awaitsReady(link);
          link.server.txStatus = readyForQueryStatus(buf, start);
          if (step.kind === StepKind.QueryForward) this.commitPendingSetting();
        }
        break;
      case StepKind.SyncForward:
      case StepKind.SyncSwallow:
        if (code === BackendCode.ReadyForQuery) {
          link.head++;
          link.busy = awaitsReady(link);
          link.server.txStatus = readyForQueryStatus(buf, start);
        }
        break;
      case StepKind.ParseForward:
      case StepKind.ParseSwallow:
      case StepKind.BindForward:
      case StepKind.CloseForward:
      case StepKind.CloseSwallow:
        link.head++;
        break;
      case StepKind.DescribeForward:
        if (code === BackendCode.RowDescription || code === BackendCode.NoData) link.head++;
        break;
      case StepKind.ExecuteForward:
        if (code === BackendCode.CommandComplete || code === BackendCode.EmptyQueryResponse || code === BackendCode.PortalSuspended) link.head++;
        else if (code === BackendCode.CopyInResponse) this.inCopyIn = true;
        break;
      default:
        return true;
    }
    return !swallow;
  }

  /** Single-server relay: forward runs of messages untouched, act on the few that matter. */
  private relay(link: Link): void {
    const scanner = link.scanner;
    // A run of messages to forward as one write: [runStart, runEnd) of scanner.buffer.
    let runStart = -1;
    let runEnd = -1;
    for (let m = scanner.next(); m !== undefined; m = scanner.next()) {
      // Synthesized replies due before this message.
      while (link.head < link.steps.length && link.steps[link.head]!.kind === StepKind.Synth) {
        if (runStart >= 0) this.write(scanner.buffer.subarray(runStart, runEnd));
        runStart = -1;
        this.write(link.steps[link.head++]!.bytes!);
      }
      if (this.consume(link, m.code, scanner.buffer, m.start, m.end)) {
        if (this.fenced) continue; // nothing of a fenced unit reaches the client
        if (runStart < 0) runStart = m.start;
        runEnd = m.end;
      } else if (this.fenced) {
        runStart = -1; // drop what was gathered: the unit runs again on the new owner
      } else {
        if (runStart >= 0) this.write(scanner.buffer.subarray(runStart, runEnd));
        runStart = -1;
      }
    }
    if (runStart >= 0) this.write(scanner.buffer.subarray(runStart, runEnd));
    // Synth steps at the tail (replies to messages that never reached the server).
    while (link.head < link.steps.length && link.steps[link.head]!.kind === StepKind.Synth) this.write(link.steps[link.head++]!.bytes!);
    if (link.head >= link.steps.length) {
      link.steps.length = 0;
      link.head = 0;
      if (!link.busy) this.unitDone();
    }
  }

  /** After an ErrorResponse in extended mode the server skips to Sync; so do our expectations. */
  private onExtendedError(link: Link, step: Step): void {
    if (step.statementId !== undefined && (step.kind === StepKind.ParseForward || step.kind === StepKind.ParseSwallow)) {
      link.server.prepared.delete(step.statementId);
    }
    if (step.clientName !== undefined) this.statements.delete(step.clientName);
    if (step.kind === StepKind.ParseForward && step.clientName === '') this.unnamed = null;
    while (link.head < link.steps.length) {
      const k = link.steps[link.head]!.kind;
      if (k === StepKind.SyncForward || k === StepKind.SyncSwallow) break;
      link.head++;
    }
    if (link.head >= link.steps.length) {
      // The batch ended with Flush: the server now ignores everything until Sync, so must we.
      this.skipUntilSync = true;
    }
  }

  private commitPendingSetting(): void {
    const p = this.pendingSetting;
    this.pendingSetting = null;
    if (!p) return;
    this.settings.set(p.name, p.sql.trim().replace(/;+\s*$/, ''));
    for (const l of this.links.values()) l.server.settings.set(p.name, this.settings.get(p.name)!);
  }

  private unitDone(): void {
    if (this.inCopyIn || this.orchestrating) return;
    for (const l of this.links.values()) if (l.head < l.steps.length || l.busy) return;
    if (this.fenced) {
      this.retryFenced();
      return;
    }
    this.retryUnit = null;
    // One clock read serves the latency histogram, its recent-latency ring and the recorder.
    const now = performance.now();
    if (this.links.size === 1) this.ctx.counters.latency.observe(this.links.keys().next().value!, (now - this.unitStarted) / 1000, now);
    // From the statement's send, not the unit's start: a wait for a pooled server is not the statement's.
    this.noteShape(now - this.shapeSentAt);
    this.finishRecording(now);
    this.busy = false;
    this.releaseIdleLinks();
    this.pump();
  }

  onServerClosed(server: PooledServer): void {
    const link = this.linkByServer.get(server);
    if (!link) return;
    this.detach(link.shardId, link);
    this.ctx.pool(link.shardId).discard(server);
    if (this.closed) return;
    const wasBusy = this.busy;
    this.fanOut = null;
    this.shardedCopy?.abort();
    this.shardedCopy = null;
    this.inCopyIn = false;
    this.held = [];
    // The transaction on that server is gone; anything else linked is rolled back with it.
    for (const [shardId, l] of this.links) {
      this.detach(shardId, l);
      this.ctx.pool(shardId).discard(l.server);
    }
    const err = bw.errorResponse({ severity: 'ERROR', code: '08006', message: `lost the connection to shard ${link.shardId}; the current transaction, if any, was rolled back` });
    if (wasBusy || link.server.txStatus !== 'I') {
      this.write(err);
      if (wasBusy) this.write(bw.readyForQuery('I'));
      else this.clientFailed = false;
    }
    this.busy = false;
    this.pump();
  }

  // ---- fan-out (scatter reads, broadcast writes and DDL, multi-row inserts) ----

  /**
   * Run one statement on several shards. `send` writes the statement to one linked server (a
   * Query, or an extended batch ending in Sync). Every shard is linked before anything is sent,
   * so a shard that is down fails the statement before it ran anywhere.
   */
  private startFanOut(shardIds: number[], kind: FanOut['kind'], send: (link: Link) => void, scatter: ScatterPlan | null = null, extended: { describeToClient: boolean } | null = null, write = false): void {
    // An autocommit write on several shards runs in a transaction per shard, committed together.
    const implicitTx = write && shardIds.length > 1 && this.txStatus() === 'I';
    const inTx = implicitTx || this.held.length > 0 || this.txLinks().length > 0;
    if (implicitTx) this.txPrefix = [];
    const f: FanOut = {
      pending: shardIds.length, leader: null, headerDone: false, held: [], rows: 0, tagVerb: null, error: null, copyOutSent: false, kind,
      merger: null, index: new Map(), describeToClient: extended?.describeToClient ?? true, extended: extended !== null, implicitTx,
    };
    if (scatter) {
      // The merger's output waits behind the header like concatenated rows do (see fanOutMessage).
      const linkAt = (i: number) => [...f.index].find(([, j]) => j === i)?.[0];
      f.merger = new ScatterMerger(scatter, shardIds.length, {
        write: (b) => {
          if (f.headerDone) this.write(b);
          else f.held.push(Buffer.from(b));
        },
        pause: (i) => linkAt(i)?.server.socket.pause(),
        resume: (i) => linkAt(i)?.server.socket.resume(),
      });
    }
    this.fanOut = f;
    this.busy = true;
    this.unitStarted = performance.now();
    let remaining = shardIds.length;
    const failures: unknown[] = [];
    const links: Link[] = [];
    const go = () => {
      if (this.closed || failures.length > 0) {
        for (const link of links) {
          this.detach(link.shardId, link);
          this.ctx.pool(link.shardId).release(link.server);
        }
        if (failures.length > 0 && !this.closed) {
          this.fanOut = null;
          this.failUnit(failures[0]);
        }
        return;
      }
      this.fanOut!.leader = links[0]!;
      for (const link of links) this.fanOut!.index.set(link, shardIds.indexOf(link.shardId));
      this.fanOutJoinsTx = inTx;
      try {
        for (const link of links) send(link);
      } finally {
        this.fanOutJoinsTx = false;
      }
    };
    for (const shardId of shardIds) {
      const got = (link: Link) => {
        links.push(link);
        if (--remaining === 0) go();
      };
      const existing = this.links.get(shardId);
      if (existing) {
        got(existing);
        continue;
      }
      const pool = this.ctx.pool(shardId);
      const s = pool.tryAcquire();
      if (s) got(this.attach(shardId, s));
      else pool.acquire().then((srv) => got(this.attach(shardId, srv)), (err: unknown) => {
        failures.push(err);
        if (--remaining === 0) go();
      });
    }
  }

  /** A restore's setval on a sequence: every shard sets its own (see setval.ts). */
  private setvalEverywhere(sql: string): boolean {
    const call = parseSetval(sql);
    const shards = this.ctx.routing().dataShardIds();
    if (!call || shards.length < 2) return false;
    this.ctx.counters.broadcast++;
    this.startFanOut(shards, 'rows', (link) => {
      this.prepareLink(link);
      this.sendToLink(link, buildQuery(shardSetvalSql(call, link.shardId, link.shardId === shards[0])), QUERY_FORWARD);
    });
    return true;
  }

  private runFanOut(plan: StatementPlan, shards: number[], msg: FrontendMessage, sql: string, literals: string[], atomicDdl = false): void {
    if (plan.kind === 'copy' && plan.direction === 'from' && !plan.query) {
      this.runShardedCopyIn(plan, shards, msg);
      return;
    }
    this.ctx.counters[plan.kind === 'scatter-read' || plan.kind === 'copy' || plan.kind === 'keyed' ? 'scatter' : 'broadcast']++;
    const perShard = new Map<number, Buffer>();
    let scatter: ScatterPlan | null = null;
    if (plan.kind === 'insert-rows') {
      const index = this.ctx.routing();
      const rowsByShard = new Map<number, string[]>();
      const rowShards = resolveRowShards(plan, literals, null, index);
      rowShards.forEach((shard, i) => {
        const span = plan.rowSpans[i]!;
        let list = rowsByShard.get(shard);
        if (!list) rowsByShard.set(shard, (list = []));
        list.push(sql.slice(span[0], span[1]));
      });
      const head = sql.slice(plan.head[0], plan.head[1]);
      const tail = sql.slice(plan.tail[0], plan.tail[1]);
      for (const [shard, rows] of rowsByShard) perShard.set(shard, buildQuery(`${head}${rows.join(', ')}${tail}`));
    } else if (plan.kind === 'insert-select') {
      const forShard = insertSelectRewriter(sql, plan, this.ctx.routing());
      for (const s of shards) perShard.set(s, buildQuery(forShard(s)));
    } else if (isScatterRead(plan)) {
      // Each shard runs the rewritten query; the merger turns the answers into the client's.
      const index = this.ctx.routing();
      scatter = scatterPlans.plan(sql, index, index.version);
      const q = buildQuery(scatter.shardSql);
      for (const s of shards) perShard.set(s, this.strayQuery(scatter.shardSql, s, q));
    } else if (seesRows(plan)) {
      for (const s of shards) perShard.set(s, this.strayQuery(sql, s, msg.bytes));
    } else {
      for (const s of shards) perShard.set(s, msg.bytes);
    }
    const kind: FanOut['kind'] = plan.kind === 'broadcast' && (plan.reason === 'ddl' || plan.reason === 'reference-write') ? 'ddl' : 'rows';
    this.startFanOut([...perShard.keys()], kind, (link) => {
      this.prepareLink(link);
      link.server.unnamedKey = null;
      this.sendToLink(link, perShard.get(link.shardId)!, QUERY_FORWARD);
    // DDL too: one shard refusing it (a table that already exists there) rolls it back everywhere,
    // instead of leaving the shards with different schemas.
    }, scatter, null, isDataWrite(plan) || atomicDdl);
    // Replies are asynchronous: the merger is in place before any shard's CopyData arrives.
    if (plan.kind === 'copy' && this.fanOut) this.fanOut.copyOut = new CopyOutMerger(plan.format === 'binary', plan.options.header === true);
  }

  /** The Query a shard runs: `same` unless the shard holds rows it does not own (see stray-filter.ts). */
  private strayQuery(sql: string, shardId: number, same: Buffer): Buffer {
    const text = strayFilters.forShard(sql, this.ctx.routing(), shardId);
    return text === sql ? same : buildQuery(text);
  }

  /**
   * An extended fan-out batch as one shard runs it: the statement bound in the batch is swapped
   * for its stray-filtered text (a statement of its own, like scatterBatch's) on a shard that
   * holds rows it does not own; the batch itself elsewhere.
   */
  private strayBatch(planned: PlannedMessage[], shardId: number): PlannedMessage[] {
    return this.shardBatch(planned, (sql) => strayFilters.forShard(sql, this.ctx.routing(), shardId));
  }

  /** An extended batch whose bound statement is swapped for `textFor(its text)` (when that differs). */
  private shardBatch(planned: PlannedMessage[], textFor: (sql: string) => string): PlannedMessage[] {
    const stmt = planned.find((p) => p.msg.code === FrontendCode.Bind)?.stmt;
    if (!stmt) return planned;
    const text = textFor(stmt.reg.sql);
    if (text === stmt.reg.sql) return planned;
    const types = stmt.reg.paramTypes;
    const shardStmt: ClientStatement = {
      reg: this.ctx.statements.intern(text, types), key: StatementRegistry.key(text, types),
      plans: stmt.plans, literals: stmt.literals, parseBytes: buildParse('', text, types),
    };
    return planned.map((p) => {
      if (p.stmt !== stmt) return p;
      if (p.msg.code === FrontendCode.Parse && p.name === '') return { msg: { code: p.msg.code, bytes: shardStmt.parseBytes }, stmt: shardStmt, name: '' };
      return { ...p, stmt: shardStmt };
    });
  }

  private relayFanOut(link: Link): void {
    // Merged rows are written one by one: cork so a chunk's worth leaves in one write.
    this.socket.cork();
    try {
      this.relayFanOutMessages(link);
    } finally {
      this.socket.uncork();
    }
  }

  private relayFanOutMessages(link: Link): void {
    const scanner = link.scanner;
    for (let m = scanner.next(); m !== undefined; m = scanner.next()) {
      while (link.head < link.steps.length && link.steps[link.head]!.kind === StepKind.Synth) {
        const bytes = link.steps[link.head++]!.bytes!;
        this.fanOutMessage(link, bytes[0]!, bytes, 0, bytes.length);
      }
      const buf = scanner.buffer;
      if (this.consume(link, m.code, buf, m.start, m.end) && m.code !== BackendCode.ReadyForQuery) {
        this.fanOutMessage(link, m.code, buf, m.start, m.end);
      }
      if (m.code === BackendCode.ReadyForQuery && link.head >= link.steps.length) {
        link.steps.length = 0;
        link.head = 0;
        if (--this.fanOut!.pending === 0) {
          this.finishFanOut();
          return;
        }
      }
    }
  }

  /**
   * One forwarded message of a fan-out. Protocol acknowledgements and the row description come
   * from the leader only; other shards' rows wait until the leader's header went out; counts are
   * summed into one CommandComplete; the first error wins and stops the rows.
   */
  private fanOutMessage(link: Link, code: number, buf: Buffer, start: number, end: number): void {
    const f = this.fanOut!;
    const leader = link === f.leader;
    if (f.merger && (code === BackendCode.DataRow || code === BackendCode.RowDescription || code === BackendCode.CommandComplete)) {
      this.mergeMessage(f, f.merger, link, leader, code, buf, start, end);
      return;
    }
    switch (code) {
      case BackendCode.CopyData:
        if (f.copyOut) {
          // Any shard's rows may follow the CopyOutResponse: stream them, never hold them.
          if (f.error) return;
          const body = buf.subarray(start + 5, end);
          const out = f.copyOut.data(link.shardId, body);
          if (out) this.write(out === body ? buf.subarray(start, end) : bw.copyData(out));
          return;
        }
        if (f.error) return;
        if (leader || f.headerDone) this.write(buf.subarray(start, end));
        else f.held.push(Buffer.from(buf.subarray(start, end)));
        return;
      case BackendCode.DataRow:
        if (f.error) return;
        if (leader || f.headerDone) this.write(buf.subarray(start, end));
        else f.held.push(Buffer.from(buf.subarray(start, end)));
        return;
      case BackendCode.CommandComplete: {
        const tag = commandCompleteTag(buf, start, end);
        const sp = tag.lastIndexOf(' ');
        const n = Number(tag.slice(sp + 1));
        if (f.kind === 'ddl' || sp < 0 || !Number.isFinite(n)) {
          f.tagVerb ??= tag;
        } else {
          f.tagVerb = tag.slice(0, sp);
          f.rows += n;
        }
        if (leader) this.releaseHeld(f);
        return;
      }
      case BackendCode.ErrorResponse:
        f.error ??= Buffer.from(buf.subarray(start, end));
        return;
      case BackendCode.NoticeResponse:
        this.write(buf.subarray(start, end));
        return;
      case BackendCode.CopyOutResponse:
        if (!f.copyOutSent) {
          f.copyOutSent = true;
          this.write(buf.subarray(start, end));
          if (f.copyOut) this.releaseHeld(f);
        }
        return;
      case BackendCode.CopyDone:
        return;
      case BackendCode.RowDescription:
      case BackendCode.NoData:
        if (leader) {
          this.write(buf.subarray(start, end));
          this.releaseHeld(f);
        }
        return;
      default:
        // ParseComplete, BindComplete, CloseComplete, ParameterDescription, EmptyQuery…
        if (leader) this.write(buf.subarray(start, end));
    }
  }

  /**
   * A scatter read's rows and header go through the merger. Simple query: the first shard's
   * RowDescription is the client's (rewritten to the final shape). Extended: the leader's, so it
   * follows the leader's ParseComplete/BindComplete; swallowed when only the proxy asked for it.
   * A merge error (0A000 for what cannot be merged) ends the result like a shard error would.
   */
  private mergeMessage(f: FanOut, merger: ScatterMerger, link: Link, leader: boolean, code: number, buf: Buffer, start: number, end: number): void {
    if (f.error) return;
    try {
      if (code === BackendCode.RowDescription) {
        const desc = merger.describe(buf, start, end);
        if (!f.extended) {
          if (!f.headerDone) {
            this.write(desc);
            this.releaseHeld(f);
          }
        } else if (leader) {
          if (f.describeToClient) this.write(desc);
          this.releaseHeld(f);
        }
      } else if (code === BackendCode.DataRow) {
        merger.row(f.index.get(link)!, buf, start, end);
      } else {
        f.tagVerb = 'SELECT';
        merger.shardDone(f.index.get(link)!);
      }
    } catch (err) {
      f.error = bw.errorResponse(toErrorFields(err));
      f.held = [];
      // Nothing more is merged: let every shard run out its reply.
      for (const l of f.index.keys()) l.server.socket.resume();
    }
  }

  /**
   * An extended batch of a scatter read, as the shards must run it: the client's statement is
   * replaced by the rewritten one (registered under its own name, so a shard may keep both), and
   * a Describe of the portal is added before Execute when the client sent none, because the
   * merger needs the column types (its RowDescription is then not forwarded).
   */
  private scatterBatch(planned: PlannedMessage[], stmt: ClientStatement, scatter: ScatterPlan): { planned: PlannedMessage[]; describeToClient: boolean } {
    const types = stmt.reg.paramTypes;
    const shardStmt: ClientStatement = {
      reg: this.ctx.statements.intern(scatter.shardSql, types), key: StatementRegistry.key(scatter.shardSql, types),
      plans: stmt.plans, literals: stmt.literals, parseBytes: buildParse('', scatter.shardSql, types),
    };
    const out: PlannedMessage[] = [];
    let described = false;
    let portal = '';
    for (const p of planned) {
      const code = p.msg.code;
      if (p.stmt === stmt && code === FrontendCode.Parse) {
        out.push(p.name === '' ? { msg: { code, bytes: shardStmt.parseBytes }, stmt: shardStmt, name: '' } : { ...p, stmt: shardStmt });
      } else if (p.stmt === stmt && (code === FrontendCode.Bind || code === FrontendCode.Describe)) {
        if (code === FrontendCode.Bind) portal = parseBind(p.msg.bytes).portal;
        else described = true;
        out.push({ ...p, stmt: shardStmt });
      } else {
        if (code === FrontendCode.Describe) described = true;
        if (code === FrontendCode.Execute && !described) {
          out.push({ msg: { code: FrontendCode.Describe, bytes: buildDescribe('P', portal) } });
          out.push(p);
          continue;
        }
        out.push(p);
      }
    }
    return { planned: out, describeToClient: described };
  }

  /**
   * A multi-row INSERT with parameters whose rows belong to several shards: each shard's batch
   * carries a statement with only its rows (parameters renumbered) and a Bind with their values.
   * A Describe of the statement keeps the client's statement, so the parameter description the
   * client sees lists all of its parameters.
   */
  private insertRowsBatches(planned: PlannedMessage[], bp: { stmt: ClientStatement; values: (Buffer | null)[]; formats: number[] }, plan: Extract<StatementPlan, { kind: 'insert-rows' }>): Map<number, PlannedMessage[]> {
    const stmt = bp.stmt;
    const rowShards = resolveRowShards(plan, stmt.literals, { values: bp.values, formats: bp.formats, types: stmt.reg.paramTypes }, this.ctx.routing());
    const parts = splitInsertRows(stmt.reg.sql, plan, rowShards, stmt.reg.paramTypes, bp.values, bp.formats);
    const out = new Map<number, PlannedMessage[]>();
    for (const [shard, part] of parts) {
      const shardStmt: ClientStatement = {
        reg: this.ctx.statements.intern(part.sql, part.paramTypes), key: StatementRegistry.key(part.sql, part.paramTypes),
        plans: stmt.plans, literals: stmt.literals, parseBytes: buildParse('', part.sql, part.paramTypes),
      };
      const list: PlannedMessage[] = [];
      for (const p of planned) {
        const code = p.msg.code;
        if (p.stmt === stmt && code === FrontendCode.Parse) {
          list.push(p.name === '' ? { msg: { code, bytes: shardStmt.parseBytes }, stmt: shardStmt, name: '' } : { ...p, stmt: shardStmt });
        } else if (p.stmt === stmt && code === FrontendCode.Bind) {
          const b = parseBind(p.msg.bytes);
          list.push({ msg: { code, bytes: buildBind(b.portal, b.statement, part.values, part.formats, b.resultFormats) }, stmt: shardStmt, name: p.name });
        } else {
          list.push(p);
        }
      }
      out.set(shard, list);
    }
    return out;
  }

  private releaseHeld(f: FanOut): void {
    f.headerDone = true;
    if (f.held.length > 0 && !f.error) for (const b of f.held) this.write(b);
    f.held = [];
  }

  private finishFanOut(): void {
    const f = this.fanOut!;
    this.fanOut = null;
    if (f.merger && !f.error) {
      try {
        f.merger.finish();
        f.rows = f.merger.rows;
        f.tagVerb = 'SELECT';
      } catch (err) {
        f.error = bw.errorResponse(toErrorFields(err));
        f.held = [];
      }
    }
    if (f.implicitTx) {
      this.endImplicitTransaction(f);
      return;
    }
    this.completeFanOut(f);
  }

  /** Commit (or, after an error, roll back) the per-shard transactions of an autocommit write, then answer. */
  private endImplicitTransaction(f: FanOut): void {
    this.orchestrating = true;
    const links = [...f.index.keys()];
    const end = async (): Promise<unknown> => {
      if (f.error) {
        await Promise.all(links.map((l) => this.internal(l, 'ROLLBACK')));
        return null;
      }
      const r = await this.commitLinks(links, true);
      return r.err;
    };
    end().then((err) => err, (err: unknown) => err).then((err) => {
      this.orchestrating = false;
      this.txPrefix = [];
      if (this.closed) return;
      if (err) {
        f.error = bw.errorResponse(toErrorFields(err));
        f.held = [];
      }
      this.completeFanOut(f);
    });
  }

  private completeFanOut(f: FanOut): void {
    if (f.error) this.recError = true;
    this.finishRecording();
    this.releaseHeld(f);
    if (f.error) {
      this.write(f.error);
    } else {
      const trailer = f.copyOut?.end();
      if (trailer && f.copyOutSent) this.write(bw.copyData(trailer));
      if (f.copyOutSent) this.write(bw.copyDone());
      if (f.tagVerb !== null) this.write(bw.commandComplete(f.kind === 'ddl' || !/^(SELECT|INSERT 0|UPDATE|DELETE|COPY|MOVE|FETCH|MERGE)$/.test(f.tagVerb) ? f.tagVerb : `${f.tagVerb} ${f.rows}`));
    }
    this.write(bw.readyForQuery(this.txStatus()));
    this.busy = false;
    // Every shard has answered: a socket paused for back-pressure (client or merger) must not go
    // back to the pool paused, or the next client of that server would wait forever.
    for (const l of f.index.keys()) l.server.socket.resume();
    this.releaseIdleLinks();
    this.pump();
  }

  // ---- COPY FROM STDIN on several shards (proxy/copy/sharded-copy-in.ts does the work) ----

  private runShardedCopyIn(plan: Extract<StatementPlan, { kind: 'copy' }>, shards: number[], msg: FrontendMessage): void {
    const setup = copyInSetup(plan, this.ctx.routing());
    this.ctx.counters[setup.mode === 'split' ? 'scatter' : 'broadcast']++;
    const links: Link[] = [];
    this.startFanOut(shards, 'rows', (link) => {
      links.push(link);
      if (links.length < shards.length) return;
      // Every shard is linked: the COPY driver takes over from the fan-out merge.
      this.fanOut = null;
      links.sort((a, b) => a.shardId - b.shardId);
      // In a transaction block the COPY joins the client's transaction on every shard (a shard not
      // in it yet starts it the way the client did); the client's COMMIT or ROLLBACK ends it.
      const inTx = this.txStatus() !== 'I';
      if (inTx && this.held.length > 0) {
        this.txPrefix = this.held;
        this.held = [];
      }
      const prefix = this.txPrefix.length > 0 ? this.txPrefix : [BEGIN];
      const copy = new ShardedCopyIn({
        ...setup, query: msg.bytes, servers: links.map((l) => l.server),
        inTransaction: inTx,
        begin: (server) => (server.txStatus !== 'I' ? [] : inTx ? prefix : [BEGIN]),
        preamble: (server) => {
          const link = links.find((l) => l.server === server)!;
          if (this.ctx.poolMode !== 'transaction' && link.server.queries > 0) return null;
          const sync = syncSettings(link.server.settings, this.settings);
          return sync ? buildQuery(sync) : null;
        },
        host: {
          write: (b) => this.write(b),
          enterCopy: () => (this.inCopyIn = true),
          leaveCopy: () => (this.inCopyIn = false),
          pauseClient: () => {
            if (this.paused) return;
            this.paused = true;
            this.socket.pause();
          },
          resumeClient: () => {
            if (!this.paused) return;
            this.paused = false;
            this.socket.resume();
          },
          done: (failed) => {
            this.shardedCopy = null;
            this.inCopyIn = false;
            if (failed) this.ctx.counters.errors++;
            if (failed && inTx) this.clientFailed = true;
            for (const l of links) l.server.queries++;
            this.busy = false;
            this.releaseIdleLinks();
            this.pump();
          },
          warn: (m, data) => this.ctx.log.warn(data, m),
        },
      });
      this.shardedCopy = copy;
      copy.start();
    });
  }

  // ---- COPY FROM STDIN on one shard ----

  private handleCopyIn(msg: FrontendMessage): void {
    if (this.shardedCopy) {
      this.shardedCopy.onClientMessage(msg);
      return;
    }
    const code = msg.code;
    if (code === FrontendCode.Flush || code === FrontendCode.Sync) return; // ignored during copy-in, as the server does
    const link = this.links.values().next().value;
    if (!link) return;
    if (!link.server.write(msg.bytes)) this.pauseClientFor(link.server);
    if (code === FrontendCode.CopyDone || code === FrontendCode.CopyFail || (code !== FrontendCode.CopyData)) this.inCopyIn = false;
  }

  // ---- extended protocol ----

  private runBatch(): void {
    const batch = this.batch;
    this.batch = [];
    const endsWithSync = batch[batch.length - 1]!.code === FrontendCode.Sync;
    // Pass 1: learn statements and collect the routes of every Bind.
    const planned: PlannedMessage[] = [];
    const plans: StatementPlan[] = [];
    let bindParams: { stmt: ClientStatement; values: (Buffer | null)[]; formats: number[] }[] = [];
    try {
      for (const msg of batch) {
        switch (msg.code) {
          case FrontendCode.Parse: {
            const p = parseParse(msg.bytes);
            if (p.name !== '' && this.statements.has(p.name)) {
              throw new SessionError('DUPLICATE_PREPARED_STATEMENT', `prepared statement "${p.name}" already exists`, { sqlstate: '42P05' });
            }
            const { analysis, literals } = this.ctx.router.analyze(p.sql);
            for (const pl of analysis.plans) {
              if (pl.kind === 'unsupported') throw new SessionError('UNSUPPORTED_STATEMENT', pl.message, { sqlstate: pl.sqlstate });
            }
            const stmt: ClientStatement = {
              reg: this.ctx.statements.intern(p.sql, p.paramTypes), key: StatementRegistry.key(p.sql, p.paramTypes),
              plans: analysis.plans, literals, parseBytes: msg.bytes,
            };
            if (p.name === '') this.unnamed = stmt;
            else this.statements.set(p.name, stmt);
            planned.push({ msg, stmt, name: p.name });
            break;
          }
          case FrontendCode.Bind: {
            this.ctx.counters.queries++;
            const b = parseBind(msg.bytes);
            const stmt = this.lookupStatement(b.statement);
            bindParams.push({ stmt, values: b.params, formats: b.paramFormats });
            planned.push({ msg, stmt, name: b.statement });
            break;
          }
          case FrontendCode.Describe: {
            const d = parseDescribe(msg.bytes);
            if (d.kind === 'S') planned.push({ msg, stmt: this.lookupStatement(d.name), name: d.name });
            else planned.push({ msg });
            break;
          }
          case FrontendCode.Close: {
            const c = parseClose(msg.bytes);
            if (c.kind === 'S') {
              if (c.name === '') this.unnamed = null;
              else this.statements.delete(c.name);
            }
            planned.push({ msg, name: c.kind === 'S' ? c.name : undefined });
            break;
          }
          default:
            planned.push({ msg });
        }
      }
      if (this.clientFailed && bindParams.some((b) => !b.stmt.plans.every((p) => p.kind === 'transaction' && (p.op === 'rollback' || p.op === 'commit')))) {
        throw new SessionError('IN_FAILED_TRANSACTION', 'current transaction is aborted, commands ignored until end of transaction block', { sqlstate: '25P02' });
      }
      // COMMIT/ROLLBACK/SAVEPOINT of a transaction that spans shards (pgjdbc sends them extended).
      if (bindParams.length === 1 && endsWithSync && this.txLinks().length > 1) {
        const only = bindParams[0]!.stmt.plans;
        if (only.length === 1 && only[0]!.kind === 'transaction') {
          const op = only[0]!.op;
          this.distributedTransactionControl(op, bindParams[0]!.stmt.reg.sql, (tag, err) => {
            for (const p of planned) {
              switch (p.msg.code) {
                case FrontendCode.Parse: this.write(bw.parseComplete()); break;
                case FrontendCode.Bind: this.write(bw.bindComplete()); break;
                case FrontendCode.Describe: this.write(bw.noData()); break;
                case FrontendCode.Close: this.write(bw.closeComplete()); break;
                case FrontendCode.Execute: this.write(err ? bw.errorResponse(toErrorFields(err)) : bw.commandComplete(tag!)); break;
                default: break;
              }
              if (err && p.msg.code === FrontendCode.Execute) break;
            }
          });
          return;
        }
      }
      // A statement on a range held by a cutover waits before it is routed (as in handle()): after
      // the switch it may belong to another shard, where its transaction may already live.
      // Every Bind of the batch counts (pgjdbc's executeBatch sends many before one Sync, its BEGIN
      // among them); one caught parks the whole batch, before any of it ran.
      if (this.ctx.holds.active && bindParams.length > 0) {
        const begins = bindParams.some((bp) => bp.stmt.plans.some((p) => p.kind === 'transaction' && p.op === 'begin'));
        for (const bp of bindParams) {
          if (this.heldBy(bp.stmt.plans, bp.stmt.literals, { values: bp.values, formats: bp.formats, types: bp.stmt.reg.paramTypes }, begins)) {
            // Run again after the release, it registers its statements again: forget them now.
            for (const p of planned) if (p.msg.code === FrontendCode.Parse && p.name !== '') this.statements.delete(p.name!);
            this.defer(batch);
            return;
          }
        }
      }
      // Route by the statements actually executed; a batch without Bind (Parse/Describe) may go anywhere.
      let target: { shards: number[]; fanout: boolean } = { shards: [], fanout: false };
      const wanted = new Set<number>();
      for (const bp of bindParams) {
        const t = this.targetShards(bp.stmt.plans, bp.stmt.literals, { values: bp.values, formats: bp.formats, types: bp.stmt.reg.paramTypes });
        if (t.fanout) {
          const plan = bp.stmt.plans[0]!;
          if (bindParams.length !== 1 || !endsWithSync || plan.kind === 'copy') {
            throw new SessionError('EXTENDED_FANOUT', 'a statement that needs several shards must be the only one in its pipeline (one Bind per Sync)', {
              sqlstate: '0A000', hint: 'send a Sync after it',
            });
          }
          this.ctx.counters[plan.kind === 'broadcast' ? 'broadcast' : 'scatter']++;
          this.noteAccess(bp.stmt.plans, bp.stmt.literals, { values: bp.values, formats: bp.formats, types: bp.stmt.reg.paramTypes }, batch.reduce((n, m) => n + m.bytes.length, 0));
          this.holdForFlush = false;
          if (isScatterRead(plan)) {
            const index = this.ctx.routing();
            const scatter = scatterPlans.plan(bp.stmt.reg.sql, index, index.version);
            const rewritten = this.scatterBatch(planned, bp.stmt, scatter);
            const perShard = new Map(t.shards.map((s) => [s, this.strayBatch(rewritten.planned, s)]));
            this.startFanOut(t.shards, 'rows', (link) => this.writeBatch(link, perShard.get(link.shardId)!), scatter, { describeToClient: rewritten.describeToClient });
            return;
          }
          if (plan.kind === 'insert-select') {
            const forShard = insertSelectRewriter(bp.stmt.reg.sql, plan, this.ctx.routing());
            const perShard = new Map(t.shards.map((s) => [s, this.shardBatch(planned, () => forShard(s))]));
            this.startFanOut(t.shards, 'rows', (link) => this.writeBatch(link, perShard.get(link.shardId)!), null, null, true);
            return;
          }
          if (plan.kind === 'insert-rows') {
            const perShard = this.insertRowsBatches(planned, bp, plan);
            this.startFanOut([...perShard.keys()], 'rows', (link) => this.writeBatch(link, perShard.get(link.shardId)!), null, null, true);
            return;
          }
          const perShard = new Map(t.shards.map((s) => [s, seesRows(plan) ? this.strayBatch(planned, s) : planned]));
          this.startFanOut(t.shards, plan.kind === 'broadcast' && (plan.reason === 'ddl' || plan.reason === 'reference-write') ? 'ddl' : 'rows', (link) => this.writeBatch(link, perShard.get(link.shardId)!), null, null, isDataWrite(plan));
          return;
        }
        // Statements that need no particular shard (BEGIN, SET…) follow the others in the batch.
        if (!t.any) wanted.add(t.shards[0]!);
      }
      if (wanted.size > 1) {
        throw new SessionError('CROSS_SHARD_BATCH', `this pipeline touches shards ${[...wanted].join(', ')} in one implicit transaction`, { sqlstate: '0A000', hint: 'send a Sync between statements for different shards' });
      }
      target = wanted.size === 1 ? { shards: [...wanted], fanout: false } : this.targetShards([], [], null);
      if (bindParams.length === 1) {
        const bp = bindParams[0]!;
        const bound = { values: bp.values, formats: bp.formats, types: bp.stmt.reg.paramTypes };
        this.noteTouched(bp.stmt.plans, bp.stmt.literals, bound);
        this.retryUnit = this.txLinks().length === 0 && !this.clientFailed && endsWithSync ? batch : null;
        this.noteAccess(bp.stmt.plans, bp.stmt.literals, { values: bp.values, formats: bp.formats, types: bp.stmt.reg.paramTypes }, batch.reduce((n, m) => n + m.bytes.length, 0));
      } else {
        this.recording = false;
        // Several statements before one Sync: one implicit transaction (or part of the client's),
        // whose locks last until it ends. The cutover's in-flight wait must see all it touched.
        if (bindParams.length > 1) this.noteTouchedBatch(bindParams.map((bp) => ({ plans: bp.stmt.plans, literals: bp.stmt.literals, bound: { values: bp.values, formats: bp.formats, types: bp.stmt.reg.paramTypes } })));
      }
      void plans;
      this.holdForFlush = !endsWithSync;
      const keyedRead = bindParams.length === 1 && endsWithSync ? soleKeyedRead(bindParams[0]!.stmt.plans) : null;
      const laneBytes = keyedRead ? pipelinableBatch(planned) : null;
      // Its shape is the statement's cached plans array (the router's analysis is shared).
      this.unitShape = keyedRead ? bindParams[0]!.stmt.plans : null;
      const send = (link: Link): void => {
        this.shapeSentAt = performance.now();
        this.sendBatch(link, planned, endsWithSync);
      };
      if (laneBytes && this.pipeline(target.shards[0]!, keyedRead!.table, laneBytes, send)) return;
      this.withLink(target.shards[0]!, send);
    } catch (err) {
      bindParams = [];
      this.batchError(err, endsWithSync);
    }
  }

  private lookupStatement(name: string): ClientStatement {
    const stmt = name === '' ? this.unnamed : this.statements.get(name);
    if (!stmt) throw new SessionError('UNKNOWN_PREPARED_STATEMENT', name === '' ? 'unnamed prepared statement does not exist' : `prepared statement "${name}" does not exist`, { sqlstate: '26000' });
    return stmt;
  }

  /** A statement the server must have before Bind/Describe: inject its Parse when missing. */
  private ensurePrepared(link: Link, stmt: ClientStatement, named: boolean): void {
    const server = link.server;
    if (!named) {
      if (server.unnamedKey !== stmt.key) {
        this.sendToLink(link, stmt.parseBytes, { kind: StepKind.ParseSwallow });
        server.unnamedKey = stmt.key;
      }
      return;
    }
    if (server.hasPrepared(stmt.reg.id)) return;
    const evicted = server.notePrepared(stmt.reg.id);
    if (evicted !== null) this.sendToLink(link, buildClose('S', `pgtide_${evicted}`), CLOSE_SWALLOW);
    this.sendToLink(link, stmt.reg.parseBytes, { kind: StepKind.ParseSwallow, statementId: stmt.reg.id });
  }

  /** Write one extended batch to a linked server, renaming shared statements and queuing steps. */
  private writeBatch(link: Link, planned: PlannedMessage[]): void {
    this.prepareLink(link);
    const socket = link.server.socket;
    socket.cork();
    try {
      for (const p of planned) {
        const msg = p.msg;
        switch (msg.code) {
          case FrontendCode.Parse: {
            const stmt = p.stmt!;
            if (p.name === '') {
              this.sendToLink(link, msg.bytes, { kind: StepKind.ParseForward, clientName: '' });
              link.server.unnamedKey = stmt.key;
            } else if (link.server.hasPrepared(stmt.reg.id)) {
              link.steps.push({ kind: StepKind.Synth, bytes: bw.parseComplete() });
            } else {
              const evicted = link.server.notePrepared(stmt.reg.id);
              if (evicted !== null) this.sendToLink(link, buildClose('S', `pgtide_${evicted}`), CLOSE_SWALLOW);
              this.sendToLink(link, stmt.reg.parseBytes, { kind: StepKind.ParseForward, statementId: stmt.reg.id, clientName: p.name! });
            }
            break;
          }
          case FrontendCode.Bind: {
            const stmt = p.stmt!;
            const named = p.name !== '';
            this.ensurePrepared(link, stmt, named);
            this.sendToLink(link, named ? rewriteBindStatement(msg.bytes, stmt.reg.serverName) : msg.bytes, BIND_FORWARD);
            break;
          }
          case FrontendCode.Describe:
            if (p.stmt) {
              const named = p.name !== '';
              this.ensurePrepared(link, p.stmt, named);
              this.sendToLink(link, named ? rewriteDescribeStatement(msg.bytes, p.stmt.reg.serverName) : msg.bytes, DESCRIBE_FORWARD);
            } else {
              this.sendToLink(link, msg.bytes, DESCRIBE_FORWARD);
            }
            break;
          case FrontendCode.Execute:
            this.sendToLink(link, msg.bytes, EXECUTE_FORWARD);
            break;
          case FrontendCode.Close:
            if (p.name !== undefined) link.steps.push({ kind: StepKind.Synth, bytes: bw.closeComplete() });
            else this.sendToLink(link, msg.bytes, CLOSE_FORWARD);
            break;
          case FrontendCode.Sync:
            this.sendToLink(link, msg.bytes, SYNC_FORWARD);
            break;
          case FrontendCode.Flush:
            link.server.write(msg.bytes);
            break;
        }
      }
    } finally {
      socket.uncork();
    }
  }

  private sendBatch(link: Link, planned: PlannedMessage[], endsWithSync: boolean): void {
    this.writeBatch(link, planned);
    // Everything may have been answered without the server (Close + Sync on a known link).
    if (link.steps.length > 0 && link.steps.every((s, i) => i < link.head || s.kind === StepKind.Synth)) {
      while (link.head < link.steps.length) this.write(link.steps[link.head++]!.bytes!);
      link.steps.length = 0;
      link.head = 0;
    }
    if (link.steps.length === 0 && !link.busy) {
      if (!endsWithSync) {
        // Flush with nothing outstanding: the unit is over, the link stays.
        this.busy = false;
        this.pump();
      } else {
        this.unitDone();
      }
    }
  }

  private batchError(err: unknown, endsWithSync: boolean): void {
    this.write(bw.errorResponse(toErrorFields(err)));
    this.ctx.counters.errors++;
    if (this.txStatus() !== 'I') this.clientFailed = true;
    if (endsWithSync) this.write(bw.readyForQuery(this.txStatus()));
    else this.skipUntilSync = true;
  }

  // ---- errors, output, teardown ----

  /** The unit failed in the proxy (routing, pool): tell the client, keep the session. */
  private failUnit(err: unknown): void {
    if (this.closed) return;
    const fields = toErrorFields(err);
    if (!(err instanceof PgtideError)) this.ctx.log.error({ err }, 'unexpected error in client session');
    this.ctx.counters.errors++;
    this.recError = true;
    this.unitShape = null;
    this.finishRecording();
    this.write(bw.errorResponse(fields));
    if (this.txStatus() !== 'I') this.clientFailed = true;
    this.write(bw.readyForQuery(this.txStatus()));
    this.busy = false;
    this.releaseIdleLinks();
    this.pump();
  }

  /** A protocol violation: FATAL error, then the connection is closed (nothing else is safe). */
  private fatal(err: unknown): void {
    const fields = toErrorFields(err);
    fields.severity = 'FATAL';
    this.ctx.log.warn({ client: this.remote, err: fields.message }, 'closing client after protocol violation');
    if (!this.socket.destroyed) this.socket.end(bw.errorResponse(fields));
    this.cleanup();
  }

  /** false: the client's socket buffer is full (linked servers are paused until it drains). */
  private write(buf: Buffer): boolean {
    if (this.closed) return true;
    this.unitWritten += buf.length;
    if (!this.socket.write(buf)) {
      for (const l of this.links.values()) l.server.socket.pause();
      return false;
    }
    return true;
  }

  private resumeLane(): void {
    const server = this.pausedLane;
    this.pausedLane = null;
    server?.socket.resume();
  }

  private onClientDrain(): void {
    this.resumeLane();
    // A shard the scatter merger paused (its queue is long) stays paused until the merger drains it.
    const f = this.fanOut;
    for (const l of this.links.values()) if (!f?.merger?.isPaused(f.index.get(l) ?? -1)) l.server.socket.resume();
  }

  private onTerminate(): void {
    this.cleanup();
    this.socket.end();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.resumeLane();
    this.ctx.sessions.delete(this.pid);
    for (const [shardId, link] of this.links) {
      this.detach(shardId, link);
      const pool = this.ctx.pool(shardId);
      link.server.socket.resume();
      // A server mid-transaction or mid-reply has state only this client knew: drop it.
      if (link.server.txStatus === 'I' && link.head >= link.steps.length && !link.busy && !this.inCopyIn && !this.holdForFlush) pool.release(link.server);
      else pool.discard(link.server);
    }
  }
}
