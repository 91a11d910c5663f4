// Runs one COPY … FROM STDIN on several shards at once: split by key (sharded) or copied (reference).
//
// Protocol per shard, all pipelined in one write: [settings sync] + BEGIN + [the table's column
// list, when the COPY names no columns] + the client's own COPY statement. When every shard has
// answered CopyInResponse the client gets one CopyInResponse and streams its data; the splitter
// turns it into one COPY stream per shard (or, for a reference table, every CopyData goes to
// every shard as is). Writes that fill a shard's socket buffer pause the client socket until
// that shard drains, so nothing accumulates in the proxy.
//
// All or nothing: the shards' COPYs run inside transactions. Only when every shard answered its
// CopyDone with `COPY n` do they all get COMMIT, and the client one `COPY <sum>`. The first error
// (a row the proxy cannot route, a shard rejecting a row, a CopyFail, a protocol slip) goes to
// the client at once, with the line number in the client's numbering; the other shards get
// CopyFail, every shard gets ROLLBACK, and the client its ReadyForQuery when all are back idle.
// The COMMITs themselves are not atomic across shards (no two-phase commit here): a shard that
// fails its COMMIT after another committed is logged and reported.
// Inside the client's transaction block (`inTransaction`) the driver neither begins (a shard not in
// the transaction yet gets the session's `begin` messages) nor commits nor rolls back: the rows
// stay in the client's transaction, which its COMMIT or ROLLBACK ends on every shard; a failed COPY
// leaves it failed ('E').
import { BackendCode, BackendScanner, commandCompleteTag, parseErrorFields, readyForQueryStatus } from '../protocol/backend-scanner.js';
import * as bw from '../protocol/backend-writer.js';
import { FrontendCode, type FrontendMessage } from '../protocol/frontend-reader.js';
import { parseCopyFail } from '../protocol/frontend-messages.js';
import { buildCopyFail, buildQuery, COPY_DONE } from '../protocol/frontend-writer.js';
import type { CopyFormat } from './copy-format.js';
import { CopyRowError, CopySplitter } from './copy-splitter.js';
import type { KeyRouter } from './key-hash.js';

/** What the driver needs of a pooled server connection. */
export interface CopyServer {
  readonly shardId: number;
  write(buf: Buffer): boolean;
  readonly socket: { once(event: 'drain', cb: () => void): unknown };
  txStatus: 'I' | 'T' | 'E';
}

/** What the driver needs of the client session. */
export interface CopyInHost {
  /** Bytes for the client. */
  write(buf: Buffer): void;
  /** The client is now in copy-in mode (its CopyData must come to onClientMessage). */
  enterCopy(): void;
  /** The client's copy-in ended (CopyDone, CopyFail, another message): stop reading for now. */
  leaveCopy(): void;
  pauseClient(): void;
  resumeClient(): void;
  /** Everything is settled and the final ReadyForQuery was written. */
  done(failed: boolean): void;
  warn(msg: string, data: Record<string, unknown>): void;
}

export interface ShardedCopyInOptions {
  /** 'split': rows by key (sharded table); 'broadcast': every row to every shard (reference table). */
  mode: 'split' | 'broadcast';
  /** Table name as written in CONTEXT lines (no schema). */
  table: string;
  /** Schema-qualified, quoted name for catalog lookups. */
  qualifiedTable: string;
  format: CopyFormat;
  /** Column list of the COPY, if it has one. */
  columns: readonly string[] | undefined;
  keyColumn: string;
  router: KeyRouter | null;
  /** Servers, one per shard, ascending shard id. */
  servers: CopyServer[];
  /** The client's COPY Query message, sent to every shard as is. */
  query: Buffer;
  /** Settings sync Query for a server (or null when in sync). */
  preamble(server: CopyServer): Buffer | null;
  host: CopyInHost;
  /** The client is in a transaction block: the COPY joins it (see the header). */
  inTransaction?: boolean;
  /** What starts the server's transaction (default BEGIN; nothing for a server already in it). */
  begin?(server: CopyServer): Buffer[];
}

type Phase =
  /** Waiting for `readyLeft` ReadyForQuery, then CopyInResponse or ErrorResponse. */
  | 'opening'
  | 'copying'
  /** Sent CopyDone or CopyFail: waiting for CommandComplete/ErrorResponse, then ReadyForQuery. */
  | 'closing'
  /** Its COPY succeeded inside the open transaction: waiting for the other shards. */
  | 'closed'
  /** Sent COMMIT or ROLLBACK. */
  | 'ending'
  | 'done';

interface ShardState {
  server: CopyServer;
  scanner: BackendScanner;
  phase: Phase;
  readyLeft: number;
  /** Answering the column-list query (shard 0 only). */
  columnsQuery: boolean;
  count: number;
  failed: boolean;
}

export class ShardedCopyIn {
  private readonly shards = new Map<number, ShardState>();
  private splitter: CopySplitter | null = null;
  private columns: string[] | null = null;
  private copyInResponse: Buffer | null = null;
  private clientInCopy = false;
  private clientEnded = false;
  private error: Buffer | null = null;
  private finished = false;
  private readonly blocked = new Set<number>();

  constructor(private readonly opts: ShardedCopyInOptions) {
    opts.servers.forEach((server, i) => {
      this.shards.set(server.shardId, {
        server, scanner: new BackendScanner(), phase: 'opening', readyLeft: 0,
        columnsQuery: i === 0 && opts.mode === 'split' && opts.columns === undefined, count: 0, failed: false,
      });
    });
  }

  start(): void {
    for (const s of this.shards.values()) {
      const pre = this.opts.preamble(s.server);
      const msgs: Buffer[] = [];
      if (pre) msgs.push(pre);
      msgs.push(...(this.opts.begin ? this.opts.begin(s.server) : [buildQuery('BEGIN')]));
      if (s.columnsQuery) {
        msgs.push(buildQuery(`SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass(${literal(this.opts.qualifiedTable)}) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`));
      }
      s.readyLeft = msgs.length;
      msgs.push(this.opts.query);
      this.send(s, Buffer.concat(msgs));
    }
  }

  // ---- client side ----

  onClientMessage(msg: FrontendMessage): void {
    if (this.clientEnded) return;
    switch (msg.code) {
      case FrontendCode.CopyData:
        if (this.error) return; // after an error the rest of the data is discarded, as Postgres does
        this.clientData(msg.bytes.subarray(5));
        return;
      case FrontendCode.CopyDone:
        this.endClient();
        if (!this.error) this.closeShards();
        else this.settle();
        return;
      case FrontendCode.CopyFail: {
        this.endClient();
        this.fail(bw.errorResponse({ severity: 'ERROR', code: '57014', message: `COPY from stdin failed: ${parseCopyFail(msg.bytes)}` }));
        return;
      }
      case FrontendCode.Flush:
      case FrontendCode.Sync:
        return;
      default:
        this.endClient();
        this.fail(bw.errorResponse({ severity: 'ERROR', code: '08P01', message: `unexpected message type 0x${msg.code.toString(16).toUpperCase().padStart(2, '0')} during COPY from stdin` }));
    }
  }

  private endClient(): void {
    this.clientEnded = true;
    this.opts.host.leaveCopy();
    this.opts.host.resumeClient();
  }

  private clientData(body: Buffer): void {
    if (this.opts.mode === 'broadcast') {
      // A reference table: every shard gets the same stream, message for message.
      const msg = Buffer.concat([headerOf(body.length), body]);
      for (const s of this.shards.values()) if (s.phase === 'copying') this.send(s, msg);
      return;
    }
    try {
      this.splitter!.push(body);
    } catch (err) {
      if (err instanceof CopyRowError) {
        this.fail(bw.errorResponse({ severity: 'ERROR', code: err.sqlstate, message: err.message, where: err.where }));
        return;
      }
      throw err;
    }
  }

  /** The client finished its data: flush and end every shard's COPY. */
  private closeShards(): void {
    if (this.splitter) {
      try {
        this.splitter.finish();
      } catch (err) {
        if (err instanceof CopyRowError) {
          this.fail(bw.errorResponse({ severity: 'ERROR', code: err.sqlstate, message: err.message, where: err.where }));
          return;
        }
        throw err;
      }
    }
    for (const s of this.shards.values()) {
      if (s.phase !== 'copying') continue;
      s.phase = 'closing';
      this.send(s, COPY_DONE);
    }
  }

  // ---- shard side ----

  /** Bytes from one shard's server (the session hands them over while this COPY runs). */
  onServerData(shardId: number, chunk: Buffer): void {
    const s = this.shards.get(shardId);
    if (!s) return;
    s.scanner.push(chunk);
    const buf = () => s.scanner.buffer;
    for (let m = s.scanner.next(); m !== undefined; m = s.scanner.next()) {
      this.onServerMessage(s, m.code, buf(), m.start, m.end);
      if (this.finished) return;
    }
  }

  private onServerMessage(s: ShardState, code: number, buf: Buffer, start: number, end: number): void {
    switch (code) {
      case BackendCode.NoticeResponse:
        this.opts.host.write(buf.subarray(start, end));
        return;
      case BackendCode.ParameterStatus:
      case BackendCode.RowDescription:
        return;
      case BackendCode.DataRow:
        if (s.columnsQuery) (this.columns ??= []).push(firstColumn(buf, start));
        return;
      case BackendCode.ErrorResponse:
        s.failed = true;
        this.fail(this.clientError(s, buf, start, end));
        return;
      case BackendCode.CopyInResponse:
        if (s.phase !== 'opening') return;
        this.copyInResponse ??= Buffer.from(buf.subarray(start, end));
        s.phase = 'copying';
        if (this.error) {
          s.phase = 'closing';
          this.send(s, buildCopyFail('COPY aborted by pgtide: another shard failed'));
          return;
        }
        this.maybeEnterCopy();
        return;
      case BackendCode.CommandComplete: {
        if (s.phase === 'closing') {
          const tag = commandCompleteTag(buf, start, end);
          if (tag.startsWith('COPY ')) s.count = Number(tag.slice(5));
        }
        return;
      }
      case BackendCode.ReadyForQuery:
        s.server.txStatus = readyForQueryStatus(buf, start);
        this.onReady(s);
        return;
      default:
        return;
    }
  }

  private onReady(s: ShardState): void {
    switch (s.phase) {
      case 'opening':
        if (s.readyLeft > 0) {
          s.readyLeft--;
          if (s.readyLeft === 0) s.columnsQuery = false;
          return;
        }
        // The COPY statement itself failed (no CopyInResponse): roll the BEGIN back.
        this.rollback(s);
        return;
      case 'closing':
        if (this.error || s.failed) {
          this.rollback(s);
          return;
        }
        s.phase = 'closed';
        this.maybeCommit();
        return;
      case 'ending':
        s.phase = 'done';
        this.settle();
        return;
      default:
        return;
    }
  }

  private maybeCommit(): void {
    const all = [...this.shards.values()];
    if (!all.every((x) => x.phase === 'closed')) return;
    if (this.opts.inTransaction) {
      // The client's transaction holds the rows; its COMMIT or ROLLBACK decides.
      for (const x of all) x.phase = 'done';
      this.settle();
      return;
    }
    // Point of no return: every shard holds its rows in an open transaction; commit them all.
    for (const x of all) {
      x.phase = 'ending';
      this.send(x, buildQuery('COMMIT'));
    }
  }

  private rollback(s: ShardState): void {
    if (s.server.txStatus === 'I' || this.opts.inTransaction) {
      // (In the client's transaction, its ROLLBACK undoes this shard's part.)
      s.phase = 'done';
      this.settle();
      return;
    }
    s.phase = 'ending';
    this.send(s, buildQuery('ROLLBACK'));
  }

  private maybeEnterCopy(): void {
    for (const s of this.shards.values()) if (s.phase !== 'copying') return;
    if (this.opts.mode === 'split') {
      const keyIndex = this.opts.columns ? this.opts.columns.indexOf(this.opts.keyColumn) : (this.columns ?? []).indexOf(this.opts.keyColumn);
      if (keyIndex < 0) {
        this.fail(bw.errorResponse({ severity: 'ERROR', code: '42703', message: `column "${this.opts.keyColumn}" of relation "${this.opts.table}" does not exist` }));
        return;
      }
      const router = this.opts.router!;
      this.splitter = new CopySplitter({
        format: this.opts.format, keyIndex, keyColumn: this.opts.keyColumn, table: this.opts.table,
        shardIds: [...this.shards.keys()],
        shardOfText: (k) => router.shardOfText(k),
        shardOfBinary: (k) => router.shardOfBinary(k),
        send: (id, msg) => this.send(this.shards.get(id)!, msg),
      });
    }
    this.clientInCopy = true;
    this.opts.host.write(this.copyInResponse!);
    this.opts.host.enterCopy();
  }

  // ---- failure and the end ----

  /** The first error wins: the client sees it now, every shard's COPY is abandoned and rolled back. */
  private fail(errorMessage: Buffer): void {
    if (this.error) return;
    this.error = errorMessage;
    this.opts.host.write(errorMessage);
    this.opts.host.resumeClient();
    for (const s of this.shards.values()) {
      if (s.phase === 'copying') {
        s.phase = 'closing';
        this.send(s, buildCopyFail('COPY aborted by pgtide: the load failed'));
      } else if (s.phase === 'closed') {
        // Finished its COPY and waiting for the others: undo it.
        this.rollback(s);
      }
    }
    if (!this.clientInCopy) this.clientEnded = true;
    this.settle();
  }

  private settle(): void {
    if (this.finished) return;
    for (const s of this.shards.values()) if (s.phase !== 'done') return;
    if (!this.clientEnded && this.clientInCopy) return; // wait for the client's CopyDone/CopyFail
    this.finished = true;
    const host = this.opts.host;
    if (!this.error) {
      let total = 0;
      if (this.opts.mode === 'broadcast') total = this.shards.values().next().value!.count;
      else for (const s of this.shards.values()) total += s.count;
      host.write(bw.commandComplete(`COPY ${total}`));
    }
    host.write(bw.readyForQuery(this.opts.inTransaction ? (this.error ? 'E' : 'T') : 'I'));
    host.done(this.error !== null);
  }

  /** A shard's ErrorResponse as the client should see it: line numbers in the client's numbering. */
  private clientError(s: ShardState, buf: Buffer, start: number, end: number): Buffer {
    const raw = buf.subarray(start, end);
    const fields = parseErrorFields(buf, start, end);
    const where = fields.W;
    if (!where || !this.splitter) return Buffer.from(raw);
    const m = /^(COPY [^,]+, line )(\d+)/.exec(where);
    if (!m) return Buffer.from(raw);
    const mapped = this.splitter.clientLine(s.server.shardId, Number(m[2]));
    const newWhere = mapped === null ? `${where} (line ${m[2]} of the rows sent to shard ${s.server.shardId})` : m[1] + String(mapped) + where.slice(m[0].length);
    return replaceField(raw, 0x57, newWhere);
  }

  /** The connection to a shard broke: nothing more will come from anyone. */
  abort(): void {
    this.finished = true;
  }

  private send(s: ShardState, bytes: Buffer): void {
    if (s.server.write(bytes)) return;
    const id = s.server.shardId;
    if (this.blocked.has(id)) return;
    this.blocked.add(id);
    this.opts.host.pauseClient();
    s.server.socket.once('drain', () => {
      this.blocked.delete(id);
      if (this.blocked.size === 0 && !this.finished) this.opts.host.resumeClient();
    });
  }
}

function headerOf(length: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = 0x64;
  h.writeInt32BE(length + 4, 1);
  return h;
}

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The first column of a DataRow as text. */
function firstColumn(buf: Buffer, start: number): string {
  const len = buf.readInt32BE(start + 7);
  return len < 0 ? '' : buf.toString('utf8', start + 11, start + 11 + len);
}

/** An ErrorResponse with one field (by its letter) replaced or added. */
export function replaceField(msg: Buffer, letter: number, value: string): Buffer {
  const parts: Buffer[] = [];
  let p = 5;
  let done = false;
  while (p < msg.length && msg[p] !== 0) {
    const z = msg.indexOf(0, p + 1);
    if (msg[p] === letter) {
      parts.push(Buffer.concat([Buffer.from([letter]), Buffer.from(value, 'utf8'), Buffer.from([0])]));
      done = true;
    } else {
      parts.push(msg.subarray(p, z + 1));
    }
    p = z + 1;
  }
  if (!done) parts.push(Buffer.concat([Buffer.from([letter]), Buffer.from(value, 'utf8'), Buffer.from([0])]));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const head = Buffer.allocUnsafe(5);
  head[0] = msg[0]!;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
