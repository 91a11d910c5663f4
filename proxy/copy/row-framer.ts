// Re-frames COPY FROM STDIN data arriving in arbitrary CopyData chunks into whole rows (text, CSV, binary).
//
// Clients cut COPY data wherever they like (psql packs lines into 8 KB chunks), so a row may
// start in one CopyData message and end three messages later. A framer keeps just enough state
// to continue scanning where the last chunk stopped, and never rescans bytes:
// - text: a newline ends a row unless a backslash escapes it (Postgres: "backslash quotes the
//   following character even if it's a newline"); a line that is exactly `\.` ends the data.
// - CSV: a newline inside quotes is data. The quote/escape state machine is Postgres's own
//   (copyfromparse.c CopyReadLineText): with ESCAPE = QUOTE a quote toggles; otherwise an escape
//   inside quotes protects the next quote or escape. Newlines inside quotes count as lines,
//   as Postgres counts them for `CONTEXT: COPY t, line N`.
// - binary: header (signature, flags, extension), then tuples `Int16 n, n × (Int32 len, bytes)`,
//   then the trailer Int16 -1. A tuple that straddles chunks waits until the bytes its next field
//   needs are there, then the pieces are joined once.
// A row lying inside one chunk is handed out as a subarray of that chunk (no copy).

/** Where a framer delivers what it found. */
export interface RowSink {
  /** The header line (text/CSV HEADER) or the binary file header: every shard needs it. */
  header(bytes: Buffer): void;
  /**
   * One row with its terminator (as sent). `lines`: how many input lines it spans (1, more for
   * CSV fields with newlines). `key`: for binary, the key field's bytes (null = NULL); undefined
   * for text/CSV, whose key the caller reads from the row.
   */
  row(bytes: Buffer, lines: number, key?: Buffer | null): void;
  /** The binary trailer (Int16 -1): every shard needs it. */
  trailer(bytes: Buffer): void;
}

export interface RowFramer {
  push(chunk: Buffer, sink: RowSink): void;
  /** End of input: deliver an unterminated last row. */
  finish(sink: RowSink): void;
  /** The end-of-data marker (`\.` or the binary trailer) was seen: later bytes are ignored. */
  readonly ended: boolean;
}

const NL = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

function concat(parts: Buffer[], total: number, tail: Buffer): Buffer {
  if (parts.length === 0) return tail;
  return Buffer.concat([...parts, tail], total + tail.length);
}

/** Is `row` exactly the end-of-data marker `\.` (with \n or \r\n)? */
function isEndMarker(row: Buffer): boolean {
  const n = row.length;
  if (n < 2 || row[0] !== BACKSLASH || row[1] !== DOT) return false;
  return n === 2 || (n === 3 && row[2] === NL) || (n === 4 && row[2] === CR && row[3] === NL);
}

/** Framer for text and CSV formats. */
export class LineFramer implements RowFramer {
  ended = false;
  private parts: Buffer[] = [];
  private partsLen = 0;
  private headerPending: boolean;
  // text: the last byte of the previous chunk was a backslash, so this chunk's first byte is escaped
  private escPending = false;
  // CSV state
  private inQuote = false;
  private lastWasEsc = false;
  private extraLines = 0;

  constructor(
    private readonly csv: boolean,
    header: boolean,
    private readonly quote = 0x22,
    private readonly escape = 0x22,
  ) {
    this.headerPending = header;
  }

  push(chunk: Buffer, sink: RowSink): void {
    if (this.ended || chunk.length === 0) return;
    if (!this.csv) this.pushText(chunk, sink);
    else if (this.quote === this.escape) this.pushCsvSimple(chunk, sink);
    else this.pushCsvEscaped(chunk, sink);
  }

  finish(sink: RowSink): void {
    if (this.ended || this.partsLen === 0) return;
    const row = Buffer.concat(this.parts, this.partsLen);
    this.parts = [];
    this.partsLen = 0;
    this.emit(row, sink);
  }

  private emit(row: Buffer, sink: RowSink): void {
    const lines = 1 + this.extraLines;
    this.extraLines = 0;
    if (isEndMarker(row)) {
      this.ended = true;
      return;
    }
    if (this.headerPending) {
      this.headerPending = false;
      sink.header(row);
      return;
    }
    sink.row(row, lines);
  }

  /** Row [start, end) of `chunk` is complete: join it with the carried pieces and deliver it. */
  private complete(chunk: Buffer, start: number, end: number, sink: RowSink): void {
    const row = concat(this.parts, this.partsLen, chunk.subarray(start, end));
    this.parts = [];
    this.partsLen = 0;
    this.emit(row, sink);
  }

  private carry(chunk: Buffer, start: number): void {
    if (start >= chunk.length) return;
    this.parts.push(chunk.subarray(start));
    this.partsLen += chunk.length - start;
  }

  private pushText(chunk: Buffer, sink: RowSink): void {
    const n = chunk.length;
    let i = 0;
    let start = 0;
    if (this.escPending) {
      this.escPending = false;
      i = 1;
    }
    // Next backslash and newline at or after i (n = none), found with native memchr.
    let bs = -2;
    let nl = -2;
    while (i < n) {
      if (bs < i) {
        bs = chunk.indexOf(BACKSLASH, i);
        if (bs < 0) bs = n;
      }
      if (nl < i) {
        nl = chunk.indexOf(NL, i);
        if (nl < 0) nl = n;
      }
      if (bs < nl) {
        // An escaped byte (possibly a newline): skip it.
        if (bs + 1 >= n) {
          this.escPending = true;
          i = n;
        } else {
          i = bs + 2;
        }
        continue;
      }
      if (nl >= n) break;
      this.complete(chunk, start, nl + 1, sink);
      if (this.ended) return;
      i = start = nl + 1;
    }
    this.carry(chunk, start);
  }

  private pushCsvSimple(chunk: Buffer, sink: RowSink): void {
    const n = chunk.length;
    const q = this.quote;
    let i = 0;
    let start = 0;
    let qp = -2;
    let nl = -2;
    while (i < n) {
      if (qp < i) {
        qp = chunk.indexOf(q, i);
        if (qp < 0) qp = n;
      }
      if (nl < i) {
        nl = chunk.indexOf(NL, i);
        if (nl < 0) nl = n;
      }
      if (this.inQuote) {
        // Newlines before the closing quote are data (and lines, for line numbers).
        while (nl < qp) {
          this.extraLines++;
          nl = chunk.indexOf(NL, nl + 1);
          if (nl < 0) nl = n;
        }
        if (qp >= n) break;
        this.inQuote = false;
        i = qp + 1;
        continue;
      }
      if (qp < nl) {
        this.inQuote = true;
        i = qp + 1;
        continue;
      }
      if (nl >= n) break;
      this.complete(chunk, start, nl + 1, sink);
      if (this.ended) return;
      i = start = nl + 1;
    }
    this.carry(chunk, start);
  }

  private pushCsvEscaped(chunk: Buffer, sink: RowSink): void {
    const n = chunk.length;
    const q = this.quote;
    const e = this.escape;
    let start = 0;
    for (let i = 0; i < n; i++) {
      const c = chunk[i]!;
      if (this.inQuote && c === e) this.lastWasEsc = !this.lastWasEsc;
      if (c === q && !this.lastWasEsc) this.inQuote = !this.inQuote;
      if (c !== e) this.lastWasEsc = false;
      if (c === NL) {
        if (this.inQuote) {
          this.extraLines++;
          continue;
        }
        this.complete(chunk, start, i + 1, sink);
        if (this.ended) return;
        start = i + 1;
      }
    }
    this.carry(chunk, start);
  }
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_FIXED = SIGNATURE.length + 8;

/** Framer for the binary format; delivers each tuple with its key field's bytes. */
export class BinaryFramer implements RowFramer {
  ended = false;
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Bytes (from the start of the pending element) needed before parsing again. */
  private need = 0;
  private headerDone = false;

  constructor(private readonly keyIndex: number) {}

  push(chunk: Buffer, sink: RowSink): void {
    if (this.ended || chunk.length === 0) return;
    this.parts.push(chunk);
    this.partsLen += chunk.length;
    if (this.partsLen < this.need) return;
    const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
    this.parts = [];
    this.partsLen = 0;
    const used = this.parse(buf, sink);
    if (!this.ended && used < buf.length) {
      this.parts.push(buf.subarray(used));
      this.partsLen = buf.length - used;
    }
  }

  finish(sink: RowSink): void {
    // Incomplete bytes at the end go to the first shard as they are: Postgres reports them.
    if (this.partsLen > 0 && !this.ended) sink.row(Buffer.concat(this.parts, this.partsLen), 1, null);
    this.parts = [];
    this.partsLen = 0;
  }

  /** Parse whole elements from `buf`; returns how many bytes were consumed. */
  private parse(buf: Buffer, sink: RowSink): number {
    const n = buf.length;
    let p = 0;
    if (!this.headerDone) {
      if (n < HEADER_FIXED) {
        // A bad signature is the server's to report; we only need to know the header's length.
        this.need = HEADER_FIXED;
        return 0;
      }
      const extLen = buf.readInt32BE(SIGNATURE.length + 4);
      const total = HEADER_FIXED + Math.max(0, extLen);
      if (n < total) {
        this.need = total;
        return 0;
      }
      sink.header(buf.subarray(0, total));
      this.headerDone = true;
      p = total;
    }
    while (p < n) {
      if (n - p < 2) {
        this.need = 2;
        return p;
      }
      const fields = buf.readInt16BE(p);
      if (fields === -1) {
        sink.trailer(buf.subarray(p, p + 2));
        this.ended = true;
        return n;
      }
      let q = p + 2;
      let key: Buffer | null = null;
      let complete = true;
      for (let f = 0; f < fields; f++) {
        if (n - q < 4) {
          this.need = q - p + 4;
          complete = false;
          break;
        }
        const len = buf.readInt32BE(q);
        q += 4;
        if (len > 0 && n - q < len) {
          this.need = q - p + len;
          complete = false;
          break;
        }
        if (f === this.keyIndex) key = len < 0 ? null : buf.subarray(q, q + len);
        if (len > 0) q += len;
      }
      if (!complete) return p;
      sink.row(buf.subarray(p, q), 1, this.keyIndex < fields ? key : undefined);
      p = q;
    }
    this.need = 0;
    return p;
  }
}
