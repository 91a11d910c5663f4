// Incremental framing of client→proxy bytes into whole messages, zero-copy when a message lies in one chunk.
//
// Usage: push() every chunk the socket emits, then call next() until it returns undefined. Length
// checks run as soon as a header is complete, so a client announcing a 2 GB message is refused
// before its body is buffered. A message split across chunks is copied once into a buffer of its
// exact size (never re-concatenated per chunk), so large CopyData/Bind messages stay linear.
import { ProtocolError } from './errors.js';
import { GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './frontend-messages.js';

export const enum FrontendCode {
  Query = 0x51, // Q
  Parse = 0x50, // P
  Bind = 0x42, // B
  Describe = 0x44, // D
  Execute = 0x45, // E
  Close = 0x43, // C
  Sync = 0x53, // S
  Flush = 0x48, // H
  Terminate = 0x58, // X
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Password = 0x70, // p, also SASLInitialResponse / SASLResponse / GSSResponse
  FunctionCall = 0x46, // F
}

export interface FrontendMessage {
  /** type byte; 0 for startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) */
  code: number;
  /** the whole message, header included; a subarray of the input chunk when it lies in one chunk */
  bytes: Buffer;
}

export interface FrontendReaderOptions {
  /** body cap for Q, P, B, F, d (PG: MaxAllocSize - 1) */
  maxMessageLength?: number;
  /** cap on the whole startup packet (PG: MAX_STARTUP_PACKET_LENGTH) */
  maxStartupLength?: number;
  /** body cap for 'p' (PG: PG_MAX_AUTH_TOKEN_LENGTH) */
  maxPasswordLength?: number;
}

/** PG's limit for the small message types (postgres.c SocketBackend). */
const SMALL_MESSAGE_MAX = 10000;
const DEFAULT_MAX_MESSAGE = 0x3fffffff - 1;
const DEFAULT_MAX_STARTUP = 10000;
const DEFAULT_MAX_PASSWORD = 65535;


const EMPTY = Buffer.alloc(0);

export class FrontendReader {
  /**
   * True until the startup packet has been read; while true, packets have no type byte (code 0).
   * Stays true by itself after an SSLRequest or GSSENCRequest, since the protocol then expects
   * another startup-phase packet; setting it to true again after answering 'N' is harmless.
   */
  startupPhase = true;

  /** body cap per type byte; 0 = unknown type */
  private readonly caps = new Float64Array(256);
  private readonly maxStartup: number;

  /** queued chunks; chunks[0] is read from offset `off` */
  private chunks: Buffer[] = [];
  private off = 0;
  private pending = 0;

  constructor(opts: FrontendReaderOptions = {}) {
    const big = opts.maxMessageLength ?? DEFAULT_MAX_MESSAGE;
    this.maxStartup = opts.maxStartupLength ?? DEFAULT_MAX_STARTUP;
    for (const c of [FrontendCode.Query, FrontendCode.Parse, FrontendCode.Bind, FrontendCode.FunctionCall, FrontendCode.CopyData]) this.caps[c] = big;
    for (const c of [
      FrontendCode.Sync,
      FrontendCode.Flush,
      FrontendCode.Terminate,
      FrontendCode.Close,
      FrontendCode.Describe,
      FrontendCode.Execute,
      FrontendCode.CopyDone,
      FrontendCode.CopyFail,
    ])
      this.caps[c] = Math.min(SMALL_MESSAGE_MAX, big);
    this.caps[FrontendCode.Password] = opts.maxPasswordLength ?? DEFAULT_MAX_PASSWORD;
  }

  /** bytes buffered but not yet returned (for back-pressure decisions) */
  get pendingBytes(): number {
    return this.pending;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.pending += chunk.length;
  }

  /**
   * Next complete message, or undefined when more bytes are needed. Throws ProtocolError on an
   * invalid length or an unknown type byte; the reader is then unusable (close the connection).
   */
  next(): FrontendMessage | undefined {
    const startup = this.startupPhase;
    if (this.pending < (startup ? 4 : 5)) return undefined;

    let code: number;
    let total: number;
    const first = this.chunks[0]!;
    if (startup) {
      const len = first.length - this.off >= 4 ? first.readInt32BE(this.off) : this.peekInt32(0);
      if (len < 8 || len > this.maxStartup) throw new ProtocolError(`invalid length of startup packet: ${len}`);
      code = 0;
      total = len;
    } else {
      code = first[this.off]!;
      const cap = this.caps[code]!;
      if (cap === 0) throw new ProtocolError(`invalid frontend message type ${code} ('${String.fromCharCode(code)}')`);
      const len = first.length - this.off >= 5 ? first.readInt32BE(this.off + 1) : this.peekInt32(1);
      if (len < 4 || len - 4 > cap) throw new ProtocolError(`invalid message length ${len} for message type '${String.fromCharCode(code)}'`);
      total = len + 1;
    }
    if (this.pending < total) return undefined;

    let bytes: Buffer;
    if (first.length - this.off >= total) {
      bytes = first.subarray(this.off, this.off + total);
      this.off += total;
      if (this.off === first.length) {
        this.chunks.shift();
        this.off = 0;
      }
    } else {
      bytes = this.take(total);
    }
    this.pending -= total;

    if (startup) {
      const req = bytes.readInt32BE(4);
      this.startupPhase = req === SSL_REQUEST_CODE || req === GSSENC_REQUEST_CODE;
    }
    return { code, bytes };
  }

  /** Drops and returns everything buffered (e.g. to refuse plaintext sent before a TLS handshake). */
  drain(): Buffer {
    const out = this.pending === 0 ? EMPTY : this.take(this.pending);
    this.pending = 0;
    return out;
  }

  /** Int32 at `at` bytes past the read position, possibly spanning chunks. */
  private peekInt32(at: number): number {
    let v = 0;
    let ci = 0;
    let i = this.off + at;
    for (let n = 0; n < 4; n++) {
      while (i >= this.chunks[ci]!.length) {
        i -= this.chunks[ci]!.length;
        ci++;
      }
      v = (v << 8) | this.chunks[ci]![i]!;
      i++;
    }
    return v;
  }

  /** Copies `n` bytes spanning chunks into one buffer of exactly that size. */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const avail = c.length - this.off;
      const want = n - filled;
      if (avail <= want) {
        c.copy(out, filled, this.off);
        filled += avail;
        this.chunks.shift();
        this.off = 0;
      } else {
        c.copy(out, filled, this.off, this.off + want);
        filled += want;
        this.off += want;
      }
    }
    return out;
  }
}
