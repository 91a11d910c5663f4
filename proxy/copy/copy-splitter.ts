// Splits one COPY FROM STDIN stream into per-shard CopyData streams by the shard key of each row.
//
// The client's CopyData chunks go through a framer (row-framer.ts); each complete row's key is
// read (key-field.ts for text/CSV, the framer's field bytes for binary), hashed by the caller's
// `shardOf`, and appended to that shard's pending bytes. A shard's pending rows leave as one
// CopyData message once they reach FLUSH_BYTES, and at finish(): memory is the partial row plus
// at most FLUSH_BYTES per shard, whatever the size of the input. Header lines, binary headers and
// trailers go to every shard, so each shard reads a complete COPY stream of its own.
//
// Line numbers: Postgres reports `CONTEXT: COPY t, line N` in the numbering of the stream it
// read, which for a shard is not the client's. For each row sent, the splitter remembers (in a
// fixed-size ring per shard) the last line it ends on in the shard's stream and in the client's,
// so a shard's error can be told in the client's numbering (clientLine()).
import { PgtideError } from '../../config/errors.js';
import { KeyValueError } from '../../config/hash.js';
import type { CopyFormat } from './copy-format.js';
import { MISSING, readField } from './key-field.js';
import { BinaryFramer, LineFramer, type RowFramer, type RowSink } from './row-framer.js';

/** A shard's pending rows leave as one CopyData message at this size (bytes). */
export const FLUSH_BYTES = 64 * 1024;
/** Rows per shard whose line numbers are remembered for error messages. */
export const LINE_WINDOW = 1 << 16;

/** A row the proxy itself cannot route: Postgres's error for it, with the line in `where`. */
export class CopyRowError extends PgtideError {
  constructor(sqlstate: string, message: string, readonly where: string) {
    super('COPY_ROW', message, { sqlstate });
  }
}

export interface SplitterOptions {
  format: CopyFormat;
  /** Position of the key among the row's fields. */
  keyIndex: number;
  keyColumn: string;
  /** Table name as Postgres prints it in CONTEXT lines. */
  table: string;
  shardIds: readonly number[];
  /** Shard of a text key (null = NULL key); throws KeyValueError when the text is not a key. */
  shardOfText(key: string | null): number;
  /** Shard of a binary key field's bytes; throws KeyValueError when they are not a key. */
  shardOfBinary(key: Buffer | null): number;
  /** Send one CopyData message (header included) to a shard. */
  send(shardId: number, message: Buffer): void;
  flushBytes?: number;
  lineWindow?: number;
}

interface ShardOut {
  id: number;
  parts: Buffer[];
  bytes: number;
  rows: number;
  /** Lines of this shard's stream so far (the header counts, as Postgres counts it). */
  line: number;
  ringShard: Float64Array;
  ringClient: Float64Array;
}

export class CopySplitter implements RowSink {
  private readonly framer: RowFramer;
  private readonly outs = new Map<number, ShardOut>();
  private readonly flushBytes: number;
  private readonly window: number;
  /** Lines of the client's stream consumed so far. */
  private line = 0;
  rows = 0;

  constructor(private readonly opts: SplitterOptions) {
    const f = opts.format;
    this.framer = f.kind === 'binary' ? new BinaryFramer(opts.keyIndex) : new LineFramer(f.kind === 'csv', f.header, f.quote, f.escape);
    this.flushBytes = opts.flushBytes ?? FLUSH_BYTES;
    this.window = opts.lineWindow ?? LINE_WINDOW;
    for (const id of opts.shardIds) {
      this.outs.set(id, { id, parts: [], bytes: 0, rows: 0, line: 0, ringShard: new Float64Array(0), ringClient: new Float64Array(0) });
    }
  }

  /** The end-of-data marker was seen: the rest of the input is ignored, as Postgres does. */
  get ended(): boolean {
    return this.framer.ended;
  }

  /** Feed the body of one client CopyData message. Throws CopyRowError for an unroutable row. */
  push(chunk: Buffer): void {
    this.framer.push(chunk, this);
  }

  /** End of input: deliver the last row and flush every shard. */
  finish(): void {
    this.framer.finish(this);
    for (const out of this.outs.values()) this.flush(out);
  }

  /** The client's line for line `shardLine` of a shard's stream, if still remembered. */
  clientLine(shardId: number, shardLine: number): number | null {
    const out = this.outs.get(shardId);
    if (!out || out.rows === 0) return shardLine <= this.headerLines() ? shardLine : null;
    if (shardLine <= this.headerLines()) return shardLine;
    const cap = out.ringShard.length;
    const oldest = Math.max(0, out.rows - cap);
    // Binary search the first remembered row whose last line is >= shardLine.
    let a = oldest;
    let b = out.rows - 1;
    if (out.ringShard[b % cap]! < shardLine) return null;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (out.ringShard[m % cap]! >= shardLine) b = m;
      else a = m + 1;
    }
    const endShard = out.ringShard[a % cap]!;
    if (a === oldest && oldest > 0 && endShard - shardLine > 0) return null;
    return out.ringClient[a % cap]! - (endShard - shardLine);
  }

  private headerLines(): number {
    return this.opts.format.header && this.opts.format.kind !== 'binary' ? 1 : 0;
  }

  // ---- RowSink ----

  header(bytes: Buffer): void {
    if (this.opts.format.kind !== 'binary') this.line++;
    for (const out of this.outs.values()) {
      if (this.opts.format.kind !== 'binary') out.line++;
      this.append(out, bytes);
    }
  }

  trailer(bytes: Buffer): void {
    for (const out of this.outs.values()) this.append(out, bytes);
  }

  row(bytes: Buffer, lines: number, key?: Buffer | null): void {
    this.line += lines;
    let shard: number;
    if (this.opts.format.kind === 'binary') {
      // A tuple with too few fields goes to the first shard, which reports it.
      shard = key === undefined ? this.opts.shardIds[0]! : this.routeBinary(key);
    } else {
      const value = readField(bytes, this.opts.keyIndex, this.opts.format);
      if (value === MISSING) {
        throw new CopyRowError('22P04', `missing data for column "${this.opts.keyColumn}"`, `COPY ${this.opts.table}, line ${this.line}: "${preview(bytes)}"`);
      }
      shard = this.routeText(value);
    }
    const out = this.outs.get(shard)!;
    out.line += lines;
    this.remember(out);
    this.rows++;
    this.append(out, bytes);
  }

  private routeText(value: string | null): number {
    try {
      return this.opts.shardOfText(value);
    } catch (err) {
      if (err instanceof KeyValueError) {
        throw new CopyRowError(err.sqlstate, err.message, `COPY ${this.opts.table}, line ${this.line}, column ${this.opts.keyColumn}: "${value}"`);
      }
      throw err;
    }
  }

  private routeBinary(key: Buffer | null): number {
    try {
      return this.opts.shardOfBinary(key);
    } catch (err) {
      if (err instanceof KeyValueError) {
        throw new CopyRowError(err.sqlstate, err.message, `COPY ${this.opts.table}, line ${this.line}, column ${this.opts.keyColumn}`);
      }
      throw err;
    }
  }

  private remember(out: ShardOut): void {
    let cap = out.ringShard.length;
    if (out.rows >= cap && cap < this.window) {
      // Grow (doubling) until the window size: small loads stay small.
      const next = Math.min(this.window, Math.max(64, cap * 2));
      const s = new Float64Array(next);
      const c = new Float64Array(next);
      s.set(out.ringShard);
      c.set(out.ringClient);
      out.ringShard = s;
      out.ringClient = c;
      cap = next;
    }
    const slot = out.rows % cap;
    out.ringShard[slot] = out.line;
    out.ringClient[slot] = this.line;
    out.rows++;
  }

  private append(out: ShardOut, bytes: Buffer): void {
    out.parts.push(bytes);
    out.bytes += bytes.length;
    if (out.bytes >= this.flushBytes) this.flush(out);
  }

  private flush(out: ShardOut): void {
    if (out.bytes === 0) return;
    const msg = Buffer.allocUnsafe(5 + out.bytes);
    msg[0] = 0x64; // d
    msg.writeInt32BE(4 + out.bytes, 1);
    let off = 5;
    for (const p of out.parts) off += p.copy(msg, off);
    out.parts = [];
    out.bytes = 0;
    this.opts.send(out.id, msg);
  }
}

/** A row as Postgres quotes it in a CONTEXT line (without its line terminator). */
function preview(row: Buffer): string {
  let end = row.length;
  if (end > 0 && row[end - 1] === 0x0a) end--;
  if (end > 0 && row[end - 1] === 0x0d) end--;
  return row.toString('utf8', 0, end);
}
