// Frames server→proxy bytes in place: yields message offsets into the current buffer so whole runs can be forwarded without copying.
//
// API
//   const s = new BackendScanner();
//   socket.on('data', (chunk) => {
//     s.push(chunk);                       // s.buffer is now the buffer to slice (often `chunk` itself)
//     let runStart = -1, runEnd = -1;
//     for (let m = s.next(); m !== undefined; m = s.next()) {
//       if (runStart < 0) runStart = m.start;
//       runEnd = m.end;
//       if (m.code === BackendCode.ReadyForQuery) status = readyForQueryStatus(s.buffer, m.start);
//     }
//     if (runStart >= 0) client.write(s.buffer.subarray(runStart, runEnd));
//   });
//
// - next() returns the same frame object every time (no allocation per message): copy its fields
//   if you keep them. `start` is the type byte, `end` is exclusive, the body is [start + 5, end).
//   `for (const m of scanner)` works too and yields that same object.
// - `buffer` changes only inside push(); every frame between two pushes lies in the same buffer,
//   so consecutive frames are contiguous there and a run is one subarray.
// - push() keeps `chunk` as the buffer when nothing is carried over (zero copies). When a message
//   straddles chunks, the pieces are collected without copying until that message is complete,
//   then concatenated once with the rest of the last chunk: a 100 MB DataRow in 64 KB chunks is
//   copied once, not re-concatenated per chunk.
// - Length and type checks throw ProtocolError as soon as a header is visible (in next() or push()).
// - takeRemaining() hands over unread bytes (e.g. what followed ReadyForQuery during login).
// - The parse helpers below read one message by its offsets, bound-checked, never past `end`.
import { ProtocolError } from './errors.js';

export const enum BackendCode {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  FunctionCallResponse = 0x56, // V
  NegotiateProtocolVersion = 0x76, // v
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
}

export interface BackendFrame {
  code: number;
  /** offset of the type byte in `scanner.buffer` */
  start: number;
  /** offset just past the message */
  end: number;
}

const KNOWN = new Uint8Array(256);
for (const c of 'RK23CdcGHWDIEVvnNAtS1sZT') KNOWN[c.charCodeAt(0)] = 1;

const EMPTY = Buffer.alloc(0);
/** A DataRow may legally be up to 1 GB; anything beyond means a desynchronised stream. */
const DEFAULT_MAX_MESSAGE = 0x40000000;

export class BackendScanner {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** pieces of a message that straddles chunks, waiting until `need` bytes are there */
  private parts: Buffer[] = [];
  private partsLen = 0;
  private need = 0;
  private readonly frame: BackendFrame = { code: 0, start: 0, end: 0 };
  private readonly maxMessage: number;

  constructor(opts: { maxMessageLength?: number } = {}) {
    this.maxMessage = opts.maxMessageLength ?? DEFAULT_MAX_MESSAGE;
  }

  /** The buffer the offsets of the frames returned since the last push() refer to. */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Bytes pushed but not yet returned as frames. */
  get pendingBytes(): number {
    return this.buf.length - this.pos + this.partsLen;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.parts.length === 0) {
      if (this.pos >= this.buf.length) {
        this.buf = chunk;
        this.pos = 0;
        return;
      }
      const tail = this.buf.subarray(this.pos);
      this.parts.push(tail);
      this.partsLen = tail.length;
      this.pos = this.buf.length;
      this.need = 0;
    }
    this.parts.push(chunk);
    this.partsLen += chunk.length;
    if (this.need === 0 && this.partsLen >= 5) this.need = this.checkHeader(this.peekByte(0), this.peekInt32(1));
    if (this.need !== 0 && this.partsLen >= this.need) {
      this.buf = Buffer.concat(this.parts, this.partsLen);
      this.pos = 0;
      this.parts = [];
      this.partsLen = 0;
      this.need = 0;
    }
  }

  /** The next complete message (a reused object), or undefined when more bytes are needed. */
  next(): BackendFrame | undefined {
    const b = this.buf;
    const p = this.pos;
    if (b.length - p < 5) return undefined;
    const end = p + this.checkHeader(b[p]!, b.readInt32BE(p + 1));
    if (end > b.length) return undefined;
    this.pos = end;
    const f = this.frame;
    f.code = b[p]!;
    f.start = p;
    f.end = end;
    return f;
  }

  *[Symbol.iterator](): IterableIterator<BackendFrame> {
    for (let m = this.next(); m !== undefined; m = this.next()) yield m;
  }

  /** Removes and returns every byte not yet returned as a frame (null if none). */
  takeRemaining(): Buffer | null {
    let out: Buffer | null = null;
    if (this.parts.length > 0) out = Buffer.concat(this.parts, this.partsLen);
    else if (this.pos < this.buf.length) out = this.buf.subarray(this.pos);
    this.buf = EMPTY;
    this.pos = 0;
    this.parts = [];
    this.partsLen = 0;
    this.need = 0;
    return out;
  }

  /** Total message size (type byte included) after validating the header. */
  private checkHeader(code: number, len: number): number {
    if (KNOWN[code] === 0) throw new ProtocolError(`unknown backend message type ${code} ('${String.fromCharCode(code)}')`);
    if (len < 4 || len > this.maxMessage) throw new ProtocolError(`invalid backend message length ${len} for type '${String.fromCharCode(code)}'`);
    return len + 1;
  }

  private peekByte(at: number): number {
    for (const part of this.parts) {
      if (at < part.length) return part[at]!;
      at -= part.length;
    }
    throw new RangeError('peek past the buffered bytes');
  }

  private peekInt32(at: number): number {
    return ((this.peekByte(at) << 24) | (this.peekByte(at + 1) << 16) | (this.peekByte(at + 2) << 8) | this.peekByte(at + 3)) | 0;
  }
}

function bad(what: string): never {
  throw new ProtocolError(`invalid ${what} message from server`);
}

/** End of the C string starting at `pos` (offset of its NUL), which must lie before `end`. */
function strEnd(buf: Buffer, pos: number, end: number, what: string): number {
  const z = buf.indexOf(0, pos);
  if (z < 0 || z >= end) bad(what);
  return z;
}

/** ErrorResponse / NoticeResponse fields keyed by their letter (C = SQLSTATE, M = message, ...). */
export function parseErrorFields(buf: Buffer, start: number, end: number): Record<string, string> {
  const out: Record<string, string> = {};
  let p = start + 5;
  while (p < end && buf[p] !== 0) {
    const key = String.fromCharCode(buf[p]!);
    const z = strEnd(buf, p + 1, end, 'ErrorResponse');
    out[key] = buf.toString('utf8', p + 1, z);
    p = z + 1;
  }
  if (p !== end - 1) bad('ErrorResponse');
  return out;
}

/** 'I' idle, 'T' in a transaction block, 'E' in a failed block. */
export function readyForQueryStatus(buf: Buffer, start: number): 'I' | 'T' | 'E' {
  const s = buf[start + 5];
  if (s === 0x49) return 'I';
  if (s === 0x54) return 'T';
  if (s === 0x45) return 'E';
  return bad('ReadyForQuery');
}

/** The row count at the end of a CommandComplete tag ("SELECT 5", "INSERT 0 3"), without allocating. */
export function tagRowCount(buf: Buffer, start: number, end: number): number {
  // end - 1 is the tag's terminating zero byte.
  let n = 0;
  let mul = 1;
  for (let i = end - 2; i > start + 4; i--) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    n += (c - 0x30) * mul;
    mul *= 10;
  }
  return n;
}

/** Whether an ErrorResponse's severity field says FATAL or PANIC. */
export function isFatalError(buf: Buffer, start: number, end: number): boolean {
  // 'S' severity, 'V' its non-localized twin (sent first by servers since 9.6)
  const sev = errorField(buf, start, end, 0x53, 0x56);
  return sev === 'FATAL' || sev === 'PANIC';
}

/** The SQLSTATE of an ErrorResponse, or null (read without building every field). */
export function errorSqlstate(buf: Buffer, start: number, end: number): string | null {
  return errorField(buf, start, end, 0x43, 0x43);
}

/** The first of two fields of an ErrorResponse that is present. */
function errorField(buf: Buffer, start: number, end: number, a: number, b: number): string | null {
  for (let i = start + 5; i < end && buf[i] !== 0;) {
    const field = buf[i]!;
    const zero = buf.indexOf(0, i + 1);
    if (zero < 0 || zero >= end) return null;
    if (field === a || field === b) return buf.toString('latin1', i + 1, zero);
    i = zero + 1;
  }
  return null;
}

export function commandCompleteTag(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start + 5, strEnd(buf, start + 5, end, 'CommandComplete'));
}

export function parseParameterStatus(buf: Buffer, start: number, end: number): { name: string; value: string } {
  const z1 = strEnd(buf, start + 5, end, 'ParameterStatus');
  const z2 = strEnd(buf, z1 + 1, end, 'ParameterStatus');
  return { name: buf.toString('utf8', start + 5, z1), value: buf.toString('utf8', z1 + 1, z2) };
}

/** The secret is a subarray of `buf`: copy it if the buffer is reused. */
export function parseBackendKeyData(buf: Buffer, start: number, end: number): { pid: number; secret: Buffer } {
  if (end - start < 13) bad('BackendKeyData');
  return { pid: buf.readInt32BE(start + 5), secret: buf.subarray(start + 9, end) };
}

/** Authentication request subtype (0 ok, 3 cleartext, 5 md5, 10 SASL, 11 SASL continue, 12 SASL final). */
export function authenticationType(buf: Buffer, start: number, end: number): number {
  if (end - start < 9) bad('Authentication');
  return buf.readInt32BE(start + 5);
}

/** Data after the subtype (md5 salt, SASL payload); a subarray. */
export function authenticationData(buf: Buffer, start: number, end: number): Buffer {
  return buf.subarray(start + 9, end);
}

export function parseSASLMechanisms(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  let p = start + 9;
  while (p < end && buf[p] !== 0) {
    const z = strEnd(buf, p, end, 'AuthenticationSASL');
    out.push(buf.toString('utf8', p, z));
    p = z + 1;
  }
  return out;
}

export interface RowDescriptionField {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeMod: number;
  format: number;
}

export function parseRowDescription(buf: Buffer, start: number, end: number): RowDescriptionField[] {
  if (end - start < 7) bad('RowDescription');
  const n = buf.readInt16BE(start + 5);
  const out = new Array<RowDescriptionField>(n);
  let p = start + 7;
  for (let i = 0; i < n; i++) {
    const z = strEnd(buf, p, end, 'RowDescription');
    if (z + 19 > end) bad('RowDescription');
    out[i] = {
      name: buf.toString('utf8', p, z),
      tableOid: buf.readUInt32BE(z + 1),
      columnAttr: buf.readInt16BE(z + 5),
      typeOid: buf.readUInt32BE(z + 7),
      typeSize: buf.readInt16BE(z + 11),
      typeMod: buf.readInt32BE(z + 13),
      format: buf.readInt16BE(z + 17),
    };
    p = z + 19;
  }
  if (p !== end) bad('RowDescription');
  return out;
}

/** Column values as subarrays of `buf` (null for SQL NULL). */
export function parseDataRow(buf: Buffer, start: number, end: number): (Buffer | null)[] {
  if (end - start < 7) bad('DataRow');
  const n = buf.readInt16BE(start + 5);
  const out = new Array<Buffer | null>(n);
  let p = start + 7;
  for (let i = 0; i < n; i++) {
    if (p + 4 > end) bad('DataRow');
    const len = buf.readInt32BE(p);
    p += 4;
    if (len === -1) out[i] = null;
    else {
      if (len < 0 || p + len > end) bad('DataRow');
      out[i] = buf.subarray(p, p + len);
      p += len;
    }
  }
  if (p !== end) bad('DataRow');
  return out;
}

export function parseParameterDescription(buf: Buffer, start: number, end: number): number[] {
  if (end - start < 7) bad('ParameterDescription');
  const n = buf.readInt16BE(start + 5);
  if (start + 7 + 4 * n !== end) bad('ParameterDescription');
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = buf.readUInt32BE(start + 7 + 4 * i);
  return out;
}

/** CopyInResponse / CopyOutResponse / CopyBothResponse. */
export function parseCopyResponse(buf: Buffer, start: number, end: number): { format: number; columnFormats: number[] } {
  if (end - start < 8) bad('CopyResponse');
  const n = buf.readInt16BE(start + 6);
  if (start + 8 + 2 * n !== end) bad('CopyResponse');
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) columnFormats[i] = buf.readInt16BE(start + 8 + 2 * i);
  return { format: buf[start + 5]!, columnFormats };
}

export function parseNotificationResponse(buf: Buffer, start: number, end: number): { pid: number; channel: string; payload: string } {
  if (end - start < 11) bad('NotificationResponse');
  const z1 = strEnd(buf, start + 9, end, 'NotificationResponse');
  const z2 = strEnd(buf, z1 + 1, end, 'NotificationResponse');
  return { pid: buf.readInt32BE(start + 5), channel: buf.toString('utf8', start + 9, z1), payload: buf.toString('utf8', z1 + 1, z2) };
}

export function parseNegotiateProtocolVersion(buf: Buffer, start: number, end: number): { newestVersion: number; unsupportedOptions: string[] } {
  if (end - start < 13) bad('NegotiateProtocolVersion');
  const n = buf.readInt32BE(start + 9);
  const opts: string[] = [];
  let p = start + 13;
  for (let i = 0; i < n; i++) {
    const z = strEnd(buf, p, end, 'NegotiateProtocolVersion');
    opts.push(buf.toString('utf8', p, z));
    p = z + 1;
  }
  return { newestVersion: buf.readInt32BE(start + 5), unsupportedOptions: opts };
}
