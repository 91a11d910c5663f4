// Parsers for the client→proxy message bodies the proxy looks at; every read is bound-checked against the message.
import { ProtocolError } from './errors.js';

export const PROTOCOL_3_0 = 196608;
export const CANCEL_REQUEST_CODE = 80877102;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;

export type StartupPacket =
  | { kind: 'startup'; protocolVersion: number; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: Buffer };

export interface ParseMessage {
  name: string;
  sql: string;
  paramTypes: number[];
}

export interface BindMessage {
  portal: string;
  statement: string;
  paramFormats: number[];
  /** subarrays of the message (no copy); null for SQL NULL */
  params: (Buffer | null)[];
  resultFormats: number[];
}

/** Longest cancel key accepted (protocol 3.2 allows up to 256 bytes). */
const MAX_CANCEL_KEY = 256;

/**
 * One reusable read cursor: parsers are synchronous and never nest, so sharing it avoids an
 * allocation per parsed message.
 */
class Cursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  what = '';

  reset(buf: Buffer, pos: number, end: number, what: string): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.what = what;
    return this;
  }

  fail(reason: string): never {
    throw new ProtocolError(`invalid ${this.what} message: ${reason}`);
  }

  need(n: number): void {
    if (this.end - this.pos < n) this.fail('truncated');
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  cstring(): string {
    const z = this.buf.indexOf(0, this.pos);
    if (z < 0 || z >= this.end) this.fail('unterminated string');
    const s = this.buf.toString('utf8', this.pos, z);
    this.pos = z + 1;
    return s;
  }

  /** skips a C string without decoding it */
  skipCString(): void {
    const z = this.buf.indexOf(0, this.pos);
    if (z < 0 || z >= this.end) this.fail('unterminated string');
    this.pos = z + 1;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  done(): void {
    if (this.pos !== this.end) this.fail('trailing bytes');
  }
}

const cur = new Cursor();

/** Checks the type byte and the length field, and positions the cursor at the body. */
function open(bytes: Buffer, code: number, what: string): Cursor {
  if (bytes.length < 5 || bytes[0] !== code || bytes.readInt32BE(1) !== bytes.length - 1) {
    throw new ProtocolError(`invalid ${what} message: bad header`);
  }
  return cur.reset(bytes, 5, bytes.length, what);
}

/** A startup-phase packet (no type byte). Does not apply defaults (database = user) or require `user`. */
export function parseStartupPacket(bytes: Buffer): StartupPacket {
  if (bytes.length < 8 || bytes.readInt32BE(0) !== bytes.length) throw new ProtocolError('invalid length of startup packet');
  const code = bytes.readInt32BE(4);
  const c = cur.reset(bytes, 8, bytes.length, 'startup');
  switch (code) {
    case SSL_REQUEST_CODE:
      c.done();
      return { kind: 'ssl' };
    case GSSENC_REQUEST_CODE:
      c.done();
      return { kind: 'gssenc' };
    case CANCEL_REQUEST_CODE: {
      const pid = c.int32();
      const keyLen = c.end - c.pos;
      if (keyLen < 4 || keyLen > MAX_CANCEL_KEY) c.fail(`cancel key of ${keyLen} bytes`);
      return { kind: 'cancel', pid, secret: c.bytes(keyLen) };
    }
  }
  if (code >>> 16 !== 3) {
    throw new ProtocolError(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0 to 3.2`, { sqlstate: '0A000' });
  }
  // null prototype: a parameter named __proto__ must stay a plain entry
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    if (c.pos >= c.end) c.fail('missing terminator');
    if (bytes[c.pos] === 0) {
      c.pos++;
      break;
    }
    const name = c.cstring();
    if (c.pos >= c.end) c.fail(`no value for parameter "${name}"`);
    params[name] = c.cstring();
  }
  c.done();
  return { kind: 'startup', protocolVersion: code, params };
}

export function parseQuery(bytes: Buffer): string {
  const c = open(bytes, 0x51, 'Query');
  const sql = c.cstring();
  c.done();
  return sql;
}

export function parseParse(bytes: Buffer): ParseMessage {
  const c = open(bytes, 0x50, 'Parse');
  const name = c.cstring();
  const sql = c.cstring();
  const n = c.int16();
  if (n < 0) c.fail('negative parameter count');
  c.need(n * 4);
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = c.uint32();
  c.done();
  return { name, sql, paramTypes };
}

export function parseBind(bytes: Buffer): BindMessage {
  const c = open(bytes, 0x42, 'Bind');
  const portal = c.cstring();
  const statement = c.cstring();
  const nf = c.int16();
  if (nf < 0) c.fail('negative format count');
  c.need(nf * 2);
  const paramFormats = new Array<number>(nf);
  for (let i = 0; i < nf; i++) paramFormats[i] = c.int16();
  const np = c.int16();
  if (np < 0) c.fail('negative parameter count');
  if (nf > 1 && nf !== np) c.fail(`${nf} parameter formats but ${np} parameters`);
  const params = new Array<Buffer | null>(np);
  for (let i = 0; i < np; i++) {
    const len = c.int32();
    if (len === -1) params[i] = null;
    else if (len < 0) c.fail(`invalid parameter length ${len}`);
    else params[i] = c.bytes(len);
  }
  const nr = c.int16();
  if (nr < 0) c.fail('negative result format count');
  c.need(nr * 2);
  const resultFormats = new Array<number>(nr);
  for (let i = 0; i < nr; i++) resultFormats[i] = c.int16();
  c.done();
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Only the statement name of a Bind, for routing without decoding the parameters. */
export function bindStatementName(bytes: Buffer): string {
  const c = open(bytes, 0x42, 'Bind');
  c.skipCString();
  return c.cstring();
}

function parseTarget(bytes: Buffer, code: number, what: string): { kind: 'S' | 'P'; name: string } {
  const c = open(bytes, code, what);
  const k = c.byte();
  if (k !== 0x53 && k !== 0x50) c.fail(`invalid target type '${String.fromCharCode(k)}'`);
  const name = c.cstring();
  c.done();
  return { kind: k === 0x53 ? 'S' : 'P', name };
}

export function parseDescribe(bytes: Buffer): { kind: 'S' | 'P'; name: string } {
  return parseTarget(bytes, 0x44, 'Describe');
}

export function parseClose(bytes: Buffer): { kind: 'S' | 'P'; name: string } {
  return parseTarget(bytes, 0x43, 'Close');
}

export function parseExecute(bytes: Buffer): { portal: string; maxRows: number } {
  const c = open(bytes, 0x45, 'Execute');
  const portal = c.cstring();
  const maxRows = c.int32();
  c.done();
  return { portal, maxRows };
}

export function parseCopyFail(bytes: Buffer): string {
  const c = open(bytes, 0x66, 'CopyFail');
  const msg = c.cstring();
  c.done();
  return msg;
}

export function parsePasswordMessage(bytes: Buffer): string {
  const c = open(bytes, 0x70, 'PasswordMessage');
  const pw = c.cstring();
  c.done();
  return pw;
}

export function parseSASLInitialResponse(bytes: Buffer): { mechanism: string; data: Buffer | null } {
  const c = open(bytes, 0x70, 'SASLInitialResponse');
  const mechanism = c.cstring();
  const len = c.int32();
  let data: Buffer | null = null;
  if (len !== -1) {
    if (len < 0) c.fail(`invalid data length ${len}`);
    data = c.bytes(len);
  }
  c.done();
  return { mechanism, data };
}

export function parseSASLResponse(bytes: Buffer): Buffer {
  return open(bytes, 0x70, 'SASLResponse').bytes(bytes.length - 5);
}
