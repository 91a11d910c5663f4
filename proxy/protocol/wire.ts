// Small byte-writing helpers shared by the frontend and backend message builders (internal to the folder).
import { PgtideError } from './errors.js';

export function cstringLength(s: string): number {
  return Buffer.byteLength(s, 'utf8') + 1;
}

/** Writes `s` + NUL at `off`, returns the offset after it. A NUL inside would cut the field short on the wire. */
export function writeCString(buf: Buffer, off: number, s: string): number {
  if (s.includes('\0')) throw new PgtideError('NUL_IN_STRING', 'a protocol string cannot contain a zero byte', { sqlstate: '22021' });
  off += buf.write(s, off, 'utf8');
  buf[off] = 0;
  return off + 1;
}

/** A message with a type byte: allocates header + body, writes the header, returns the buffer. */
export function allocMessage(code: number, bodyLength: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + bodyLength);
  buf[0] = code;
  buf.writeInt32BE(4 + bodyLength, 1);
  return buf;
}

/** A message whose body is one C string. */
export function cstringMessage(code: number, s: string): Buffer {
  const buf = allocMessage(code, cstringLength(s));
  writeCString(buf, 5, s);
  return buf;
}

/** A message with no body (built once per constant). */
export function emptyMessage(code: number): Buffer {
  return allocMessage(code, 0);
}
