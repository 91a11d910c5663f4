// Builders for the frontend messages the proxy sends to Postgres servers (and rewrites of client ones).
import { ProtocolError } from './errors.js';
import { CANCEL_REQUEST_CODE, PROTOCOL_3_0 } from './frontend-messages.js';
import { allocMessage, cstringLength, cstringMessage, emptyMessage, writeCString } from './wire.js';

export const SYNC = emptyMessage(0x53);
export const FLUSH = emptyMessage(0x48);
export const TERMINATE = emptyMessage(0x58);
export const COPY_DONE = emptyMessage(0x63);

/** StartupMessage for protocol 3.0 with the given parameters (user, database, GUCs). */
export function buildStartup(params: Record<string, string>): Buffer {
  let len = 8 + 1;
  for (const k in params) len += cstringLength(k) + cstringLength(params[k]!);
  const buf = Buffer.allocUnsafe(len);
  buf.writeInt32BE(len, 0);
  buf.writeInt32BE(PROTOCOL_3_0, 4);
  let off = 8;
  for (const k in params) {
    off = writeCString(buf, off, k);
    off = writeCString(buf, off, params[k]!);
  }
  buf[off] = 0;
  return buf;
}

export function buildQuery(sql: string): Buffer {
  return cstringMessage(0x51, sql);
}

export function buildParse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  const buf = allocMessage(0x50, cstringLength(name) + cstringLength(sql) + 2 + 4 * paramTypes.length);
  let off = writeCString(buf, 5, name);
  off = writeCString(buf, off, sql);
  off = buf.writeInt16BE(paramTypes.length, off);
  for (const t of paramTypes) off = buf.writeUInt32BE(t >>> 0, off);
  return buf;
}

/** End offset (exclusive, after the NUL) of the C string starting at `pos`, within the message. */
function cstringEnd(bytes: Buffer, pos: number, what: string): number {
  const z = bytes.indexOf(0, pos);
  if (z < 0) throw new ProtocolError(`invalid ${what} message: unterminated string`);
  return z + 1;
}

function checkHeader(bytes: Buffer, code: number, what: string): void {
  if (bytes.length < 5 || bytes[0] !== code || bytes.readInt32BE(1) !== bytes.length - 1) {
    throw new ProtocolError(`invalid ${what} message: bad header`);
  }
}

/** Replaces the bytes [from, to) of a message with `name` + NUL and fixes the length. */
function splice(bytes: Buffer, from: number, to: number, name: string): Buffer {
  const nameLen = cstringLength(name);
  const out = Buffer.allocUnsafe(bytes.length - (to - from) + nameLen);
  bytes.copy(out, 0, 0, from);
  writeCString(out, from, name);
  bytes.copy(out, from + nameLen, to);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** The same Bind with another statement name; portal, formats and values are copied verbatim. */
export function rewriteBindStatement(bindBytes: Buffer, newStatementName: string): Buffer {
  checkHeader(bindBytes, 0x42, 'Bind');
  const stmtStart = cstringEnd(bindBytes, 5, 'Bind');
  return splice(bindBytes, stmtStart, cstringEnd(bindBytes, stmtStart, 'Bind'), newStatementName);
}

/** The same Describe with another name; only meaningful for kind 'S' (the caller checks the kind). */
export function rewriteDescribeStatement(bytes: Buffer, newName: string): Buffer {
  checkHeader(bytes, 0x44, 'Describe');
  return splice(bytes, 6, cstringEnd(bytes, 6, 'Describe'), newName);
}

/** The same Close with another name; only meaningful for kind 'S' (the caller checks the kind). */
export function rewriteCloseStatement(bytes: Buffer, newName: string): Buffer {
  checkHeader(bytes, 0x43, 'Close');
  return splice(bytes, 6, cstringEnd(bytes, 6, 'Close'), newName);
}

function buildTarget(code: number, kind: 'S' | 'P', name: string): Buffer {
  const buf = allocMessage(code, 1 + cstringLength(name));
  buf[5] = kind === 'S' ? 0x53 : 0x50;
  writeCString(buf, 6, name);
  return buf;
}

export function buildDescribe(kind: 'S' | 'P', name: string): Buffer {
  return buildTarget(0x44, kind, name);
}

export function buildClose(kind: 'S' | 'P', name: string): Buffer {
  return buildTarget(0x43, kind, name);
}

export function buildExecute(portal: string, maxRows = 0): Buffer {
  const buf = allocMessage(0x45, cstringLength(portal) + 4);
  buf.writeInt32BE(maxRows, writeCString(buf, 5, portal));
  return buf;
}

/** Bind with text or binary parameters, for queries the proxy issues itself. */
export function buildBind(portal: string, statement: string, params: readonly (Buffer | string | null)[], paramFormats: readonly number[] = [], resultFormats: readonly number[] = []): Buffer {
  const values = params.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  let body = cstringLength(portal) + cstringLength(statement) + 2 + 2 * paramFormats.length + 2 + 2 + 2 * resultFormats.length;
  for (const v of values) body += 4 + (v === null ? 0 : v.length);
  const buf = allocMessage(0x42, body);
  let off = writeCString(buf, 5, portal);
  off = writeCString(buf, off, statement);
  off = buf.writeInt16BE(paramFormats.length, off);
  for (const f of paramFormats) off = buf.writeInt16BE(f, off);
  off = buf.writeInt16BE(values.length, off);
  for (const v of values) {
    if (v === null) off = buf.writeInt32BE(-1, off);
    else {
      off = buf.writeInt32BE(v.length, off);
      off += v.copy(buf, off);
    }
  }
  off = buf.writeInt16BE(resultFormats.length, off);
  for (const f of resultFormats) off = buf.writeInt16BE(f, off);
  return buf;
}

export function buildCancelRequest(pid: number, secret: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(12 + secret.length);
  buf.writeInt32BE(buf.length, 0);
  buf.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  buf.writeInt32BE(pid, 8);
  secret.copy(buf, 12);
  return buf;
}

export function buildPasswordMessage(password: string): Buffer {
  return cstringMessage(0x70, password);
}

export function buildSASLInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  const buf = allocMessage(0x70, cstringLength(mechanism) + 4 + (data === null ? 0 : data.length));
  const off = writeCString(buf, 5, mechanism);
  if (data === null) buf.writeInt32BE(-1, off);
  else data.copy(buf, buf.writeInt32BE(data.length, off));
  return buf;
}

export function buildSASLResponse(data: Buffer): Buffer {
  const buf = allocMessage(0x70, data.length);
  data.copy(buf, 5);
  return buf;
}

/** Copies `data` behind a header; to avoid the copy, write `copyDataHeader(n)` then the data. */
export function buildCopyData(data: Buffer): Buffer {
  const buf = allocMessage(0x64, data.length);
  data.copy(buf, 5);
  return buf;
}

/** The 5-byte header of a CopyData of `length` body bytes, for writev-style zero-copy sends. */
export function copyDataHeader(length: number): Buffer {
  return allocMessage(0x64, length);
}

export function buildCopyFail(message: string): Buffer {
  return cstringMessage(0x66, message);
}
