// COPY TO STDOUT / COPY FROM STDIN over node-postgres clients (pg's Submittable hooks), and a pipe between two servers.
import type pg from 'pg';

/** The part of pg's internal Connection a COPY submittable talks to. */
interface PgConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(msg: string): void;
}

interface ServerMessage {
  text?: string;
  chunk?: Buffer;
}

/** Base of both directions: settles once the server says ReadyForQuery (or the link breaks). */
abstract class CopySubmittable {
  rowCount = 0;
  protected error: Error | null = null;
  private settle!: { resolve: (n: number) => void; reject: (e: Error) => void };
  private settled = false;
  readonly done: Promise<number>;

  constructor(readonly text: string) {
    this.done = new Promise<number>((resolve, reject) => (this.settle = { resolve, reject }));
    // The caller awaits `done`; never let an early rejection count as unhandled.
    this.done.catch(() => {});
  }

  submit(connection: PgConnection): void {
    connection.query(this.text);
  }

  handleCommandComplete(msg: ServerMessage): void {
    const m = /(\d+)\s*$/.exec(msg.text ?? '');
    if (m) this.rowCount = Number(m[1]);
  }

  handleError(err: Error): void {
    this.error ??= err;
    // Settle now: on an ErrorResponse pg drops its active query, so the ReadyForQuery that follows
    // never reaches this submittable (waiting for it hung a move forever on a failed target COPY).
    // pg still waits for that ReadyForQuery before it sends the caller's next query (ROLLBACK).
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve(this.rowCount);
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(_msg: ServerMessage, _c: PgConnection): void {}
  handleCopyInResponse(c: PgConnection): void {
    c.sendCopyFail('unexpected COPY FROM STDIN');
  }
}

/** COPY … TO STDOUT: each CopyData message (one row in text format) goes to `onData`. */
export class CopyOut extends CopySubmittable {
  bytes = 0;
  constructor(text: string, private readonly onData: (chunk: Buffer) => void) {
    super(text);
  }

  override handleCopyData(msg: ServerMessage): void {
    if (!msg.chunk) return;
    this.bytes += msg.chunk.length;
    this.onData(msg.chunk);
  }
}

/** Rows are gathered into CopyData messages of about this size. */
const STAGE_BYTES = 64 * 1024;

/**
 * COPY … FROM STDIN whose data arrives later: `write` queues or sends, `end` finishes, `fail`
 * aborts. Data written before the server's CopyInResponse is buffered.
 *
 * Rows are gathered into ~64 KB CopyData messages (COPY FROM reads a byte stream; message
 * boundaries mean nothing to it): one serialization and one socket write per 64 KB instead of per
 * row, which kept the event loop of the process (the leader proxy's) busy during a backfill.
 * `write`'s chunk may be a view into the other connection's receive buffer, which pg-protocol
 * reuses (it moves a partial message to the buffer's start), so it is always copied before
 * `write` returns: buffered views were overwritten before the target was ready and the target got
 * rows spliced from other rows (a move failed with 22P02 under load).
 */
export class CopyIn extends CopySubmittable {
  private conn: PgConnection | null = null;
  private pending: Buffer[] = [];
  private ended: 'end' | 'fail' | null = null;
  private failMessage = '';
  private stage = Buffer.allocUnsafe(STAGE_BYTES);
  private staged = 0;

  override handleCopyInResponse(c: PgConnection): void {
    this.conn = c;
    for (const b of this.pending) c.sendCopyFromChunk(b);
    this.pending = [];
    if (this.ended === 'end') {
      this.flush();
      c.endCopyFrom();
    } else if (this.ended === 'fail') c.sendCopyFail(this.failMessage);
  }

  write(chunk: Buffer): void {
    if (this.error || this.ended) return; // the server refused the COPY and would ignore the rest
    if (this.staged + chunk.length > this.stage.length) this.flush();
    if (chunk.length > this.stage.length) {
      // sendCopyFromChunk serializes (copies) at once; only a buffered chunk needs its own copy.
      if (this.conn) this.conn.sendCopyFromChunk(chunk);
      else this.pending.push(Buffer.from(chunk));
      return;
    }
    this.staged += chunk.copy(this.stage, this.staged);
  }

  /** Send the staged rows (or, before CopyInResponse, keep them and start a new stage). */
  private flush(): void {
    if (this.staged === 0) return;
    const data = this.stage.subarray(0, this.staged);
    if (this.conn) {
      this.conn.sendCopyFromChunk(data); // serialized (copied) at once: the stage can be reused
    } else {
      this.pending.push(data);
      this.stage = Buffer.allocUnsafe(STAGE_BYTES);
    }
    this.staged = 0;
  }

  end(): void {
    if (this.ended) return;
    this.ended = 'end';
    if (!this.error && this.conn) {
      this.flush();
      this.conn.endCopyFrom();
    }
  }

  fail(message: string): void {
    if (this.ended || this.error) return;
    this.ended = 'fail';
    this.failMessage = message;
    this.staged = 0;
    this.pending = [];
    this.conn?.sendCopyFail(message);
  }
}

export interface PipeResult {
  rows: number;
  bytes: number;
  /** The last CopyData message (the last row, text format), if any. */
  lastRow: Buffer | null;
}

/**
 * Stream `COPY (…) TO STDOUT` on `src` into `COPY … FROM STDIN` on `dst`, row by row as it
 * arrives. Both statements must use the same format and column order.
 */
export async function copyPipe(src: pg.ClientBase, outSql: string, dst: pg.ClientBase, inSql: string, pace?: Pace): Promise<PipeResult> {
  const sink = new CopyIn(inSql);
  void dst.query(sink as unknown as pg.QueryConfig);
  // The last row is kept as a copy: the chunk is a view into src's receive buffer (see CopyIn.write).
  let last = Buffer.allocUnsafe(256);
  let lastLength = -1;
  const pacer = pace && Number.isFinite(pace.bytesPerSec) && pace.bytesPerSec > 0 ? new Pacer(pace.bytesPerSec, sourceStream(src)) : null;
  const source = new CopyOut(outSql, (chunk) => {
    if (chunk.length > last.length) last = Buffer.allocUnsafe(Math.max(chunk.length, last.length * 2));
    lastLength = chunk.copy(last);
    sink.write(chunk);
    pacer?.took(chunk.length);
  });
  void src.query(source as unknown as pg.QueryConfig);
  try {
    await source.done;
  } catch (err) {
    sink.fail(`source failed: ${(err as Error).message}`);
    await sink.done.catch(() => {});
    throw err;
  }
  sink.end();
  const rows = await sink.done;
  return { rows, bytes: source.bytes, lastRow: lastLength < 0 ? null : Buffer.from(last.subarray(0, lastLength)) };
}

/** A rate limit for one copyPipe: the source's socket is paused whenever the copy runs ahead of it. */
export interface Pace {
  bytesPerSec: number;
}

/** The socket under a pg client (pg keeps it on its connection; pausing it stops the COPY's rows). */
function sourceStream(c: pg.ClientBase): { pause(): void; resume(): void } | null {
  const stream = (c as unknown as { connection?: { stream?: { pause?: unknown; resume?: unknown } } }).connection?.stream;
  return stream && typeof stream.pause === 'function' && typeof stream.resume === 'function' ? (stream as { pause(): void; resume(): void }) : null;
}

/**
 * Token bucket over the copied bytes. Pausing the socket is what spreads the work of both servers
 * over time: the source backend blocks on its full send buffer and the target gets rows only as
 * fast as they are passed on, so neither runs flat out while foreground statements wait for a CPU.
 */
class Pacer {
  private readonly t0 = performance.now();
  private bytes = 0;
  private paused = false;

  constructor(private readonly bytesPerSec: number, private readonly stream: { pause(): void; resume(): void } | null) {}

  took(n: number): void {
    this.bytes += n;
    if (this.paused || !this.stream) return;
    // Ahead of the budget by more than PACE_SLACK_MS worth of bytes: wait until it catches up.
    if (this.aheadMs() <= PACE_SLACK_MS) return;
    this.paused = true;
    this.stream.pause();
    this.wait();
  }

  private aheadMs(): number {
    return (this.bytes / this.bytesPerSec) * 1000 - (performance.now() - this.t0);
  }

  /** The rest of the socket read that crossed the budget is still counted after pause(): re-check before resuming. */
  private wait(): void {
    setTimeout(() => {
      if (this.aheadMs() > PACE_SLACK_MS) {
        this.wait();
        return;
      }
      this.paused = false;
      this.stream!.resume();
    }, Math.max(1, this.aheadMs()));
  }
}

/** How far ahead of its rate a paced copy may run before it waits (ms): the size of its bursts. */
const PACE_SLACK_MS = 5;

/** Decode one field of a COPY text-format row (backslash escapes; `\N` is NULL). */
export function copyTextField(row: Buffer, index: number): string | null {
  let text = row.toString('utf8');
  if (text.endsWith('\n')) text = text.slice(0, -1);
  const field = text.split('\t')[index];
  if (field === undefined) throw new Error(`COPY row has no field ${index}`);
  if (field === '\\N') return null;
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    switch (e[0]) {
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'v': return '\v';
      case 'x': return String.fromCharCode(parseInt(e.slice(1), 16));
      default:
        if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
        return e;
    }
  });
}
