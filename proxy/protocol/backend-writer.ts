// Builders for the backend messages the proxy sends to clients; constant messages are built once and shared (never mutate them).
import type { PgErrorFields } from './errors.js';
import { allocMessage, cstringLength, cstringMessage, emptyMessage, writeCString } from './wire.js';

export type { PgErrorFields } from './errors.js';

/** Answer to SSLRequest / GSSENCRequest: no encryption, continue in plaintext. */
export const SSL_NO = Buffer.from('N');

function authMessage(type: number, extra: number): Buffer {
  const buf = allocMessage(0x52, 4 + extra);
  buf.writeInt32BE(type, 5);
  return buf;
}

const AUTH_OK = authMessage(0, 0);
const AUTH_CLEARTEXT = authMessage(3, 0);

export function authenticationOk(): Buffer {
  return AUTH_OK;
}

export function authenticationCleartextPassword(): Buffer {
  return AUTH_CLEARTEXT;
}

export function authenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new RangeError('md5 salt must be 4 bytes');
  const buf = authMessage(5, 4);
  salt.copy(buf, 9);
  return buf;
}

export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  let extra = 1;
  for (const m of mechanisms) extra += cstringLength(m);
  const buf = authMessage(10, extra);
  let off = 9;
  for (const m of mechanisms) off = writeCString(buf, off, m);
  buf[off] = 0;
  return buf;
}

function authData(type: number, data: Buffer): Buffer {
  const buf = authMessage(type, data.length);
  data.copy(buf, 9);
  return buf;
}

export function authenticationSASLContinue(data: Buffer): Buffer {
  return authData(11, data);
}

export function authenticationSASLFinal(data: Buffer): Buffer {
  return authData(12, data);
}

export function parameterStatus(name: string, value: string): Buffer {
  const buf = allocMessage(0x53, cstringLength(name) + cstringLength(value));
  writeCString(buf, writeCString(buf, 5, name), value);
  return buf;
}

export function backendKeyData(pid: number, secret: Buffer): Buffer {
  const buf = allocMessage(0x4b, 4 + secret.length);
  buf.writeInt32BE(pid, 5);
  secret.copy(buf, 9);
  return buf;
}

const RFQ_IDLE = readyForQueryMessage(0x49);
const RFQ_IN_TRANSACTION = readyForQueryMessage(0x54);
const RFQ_FAILED = readyForQueryMessage(0x45);

function readyForQueryMessage(status: number): Buffer {
  const buf = allocMessage(0x5a, 1);
  buf[5] = status;
  return buf;
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return status === 'I' ? RFQ_IDLE : status === 'T' ? RFQ_IN_TRANSACTION : RFQ_FAILED;
}

/**
 * Field texts come from anywhere (server messages, exceptions); a NUL would end the field early and
 * desynchronise the client, so it is dropped rather than thrown on.
 */
function clean(s: string): string {
  return s.includes('\0') ? s.replaceAll('\0', '') : s;
}

function fieldsMessage(code: number, f: PgErrorFields): Buffer {
  const parts: [number, string][] = [
    [0x53, f.severity], // S
    [0x56, f.severity], // V
    [0x43, f.code], // C
    [0x4d, f.message], // M
  ];
  if (f.detail !== undefined) parts.push([0x44, f.detail]); // D
  if (f.hint !== undefined) parts.push([0x48, f.hint]); // H
  if (f.position !== undefined) parts.push([0x50, String(f.position)]); // P
  if (f.where !== undefined) parts.push([0x57, f.where]); // W
  if (f.routine !== undefined) parts.push([0x52, f.routine]); // R
  let len = 1;
  for (const p of parts) {
    p[1] = clean(p[1]);
    len += 1 + cstringLength(p[1]);
  }
  const buf = allocMessage(code, len);
  let off = 5;
  for (const [k, v] of parts) {
    buf[off++] = k;
    off = writeCString(buf, off, v);
  }
  buf[off] = 0;
  return buf;
}

export function errorResponse(fields: PgErrorFields): Buffer {
  return fieldsMessage(0x45, fields);
}

export function noticeResponse(fields: PgErrorFields): Buffer {
  return fieldsMessage(0x4e, fields);
}

export function commandComplete(tag: string): Buffer {
  return cstringMessage(0x43, tag);
}

const EMPTY_QUERY = emptyMessage(0x49);
const PARSE_COMPLETE = emptyMessage(0x31);
const BIND_COMPLETE = emptyMessage(0x32);
const CLOSE_COMPLETE = emptyMessage(0x33);
const NO_DATA = emptyMessage(0x6e);
const PORTAL_SUSPENDED = emptyMessage(0x73);
const COPY_DONE = emptyMessage(0x63);

export function emptyQueryResponse(): Buffer {
  return EMPTY_QUERY;
}
export function parseComplete(): Buffer {
  return PARSE_COMPLETE;
}
export function bindComplete(): Buffer {
  return BIND_COMPLETE;
}
export function closeComplete(): Buffer {
  return CLOSE_COMPLETE;
}
export function noData(): Buffer {
  return NO_DATA;
}
export function portalSuspended(): Buffer {
  return PORTAL_SUSPENDED;
}
export function copyDone(): Buffer {
  return COPY_DONE;
}

export interface RowField {
  name: string;
  tableOid?: number;
  columnAttr?: number;
  typeOid: number;
  typeSize?: number;
  typeMod?: number;
  format?: 0 | 1;
}

export function rowDescription(fields: readonly RowField[]): Buffer {
  let len = 2;
  for (const f of fields) len += cstringLength(f.name) + 18;
  const buf = allocMessage(0x54, len);
  let off = buf.writeInt16BE(fields.length, 5);
  for (const f of fields) {
    off = writeCString(buf, off, f.name);
    off = buf.writeUInt32BE((f.tableOid ?? 0) >>> 0, off);
    off = buf.writeInt16BE(f.columnAttr ?? 0, off);
    off = buf.writeUInt32BE(f.typeOid >>> 0, off);
    off = buf.writeInt16BE(f.typeSize ?? -1, off);
    off = buf.writeInt32BE(f.typeMod ?? -1, off);
    off = buf.writeInt16BE(f.format ?? 0, off);
  }
  return buf;
}

/** Strings are written as UTF-8 text; Buffers verbatim (text or binary, as the RowDescription says). */
export function dataRow(values: readonly (string | Buffer | null)[]): Buffer {
  let len = 2;
  for (const v of values) len += 4 + (v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);
  const buf = allocMessage(0x44, len);
  let off = buf.writeInt16BE(values.length, 5);
  for (const v of values) {
    if (v === null) {
      off = buf.writeInt32BE(-1, off);
    } else if (typeof v === 'string') {
      const n = buf.write(v, off + 4, 'utf8');
      buf.writeInt32BE(n, off);
      off += 4 + n;
    } else {
      off = buf.writeInt32BE(v.length, off);
      off += v.copy(buf, off);
    }
  }
  return buf;
}

export function parameterDescription(oids: readonly number[]): Buffer {
  const buf = allocMessage(0x74, 2 + 4 * oids.length);
  let off = buf.writeInt16BE(oids.length, 5);
  for (const o of oids) off = buf.writeUInt32BE(o >>> 0, off);
  return buf;
}

function copyResponse(code: number, format: 0 | 1, columnFormats: readonly number[]): Buffer {
  const buf = allocMessage(code, 3 + 2 * columnFormats.length);
  buf[5] = format;
  let off = buf.writeInt16BE(columnFormats.length, 6);
  for (const f of columnFormats) off = buf.writeInt16BE(f, off);
  return buf;
}

export function copyInResponse(format: 0 | 1, columnFormats: readonly number[]): Buffer {
  return copyResponse(0x47, format, columnFormats);
}

export function copyOutResponse(format: 0 | 1, columnFormats: readonly number[]): Buffer {
  return copyResponse(0x48, format, columnFormats);
}

/** Copies `data` behind a header; for zero copy write `copyDataHeader(n)` (frontend-writer) and the data. */
export function copyData(data: Buffer): Buffer {
  const buf = allocMessage(0x64, data.length);
  data.copy(buf, 5);
  return buf;
}

/**
 * PG writes the whole version number (3 << 16 | minor) in the first field and libpq reads it so;
 * pass the minor (0, 2) or a whole version number.
 */
export function negotiateProtocolVersion(newestMinor: number, unsupportedOptions: readonly string[]): Buffer {
  let len = 8;
  for (const o of unsupportedOptions) len += cstringLength(o);
  const buf = allocMessage(0x76, len);
  buf.writeInt32BE(newestMinor > 0xffff ? newestMinor : (3 << 16) | newestMinor, 5);
  let off = buf.writeInt32BE(unsupportedOptions.length, 9);
  for (const o of unsupportedOptions) off = writeCString(buf, off, o);
  return buf;
}

export function notificationResponse(pid: number, channel: string, payload: string): Buffer {
  const buf = allocMessage(0x41, 4 + cstringLength(channel) + cstringLength(payload));
  buf.writeInt32BE(pid, 5);
  writeCString(buf, writeCString(buf, 9, channel), payload);
  return buf;
}
