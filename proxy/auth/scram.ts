// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as used by Postgres: secrets, the server side state machine, and the client side.
//
// Server exchange (the proxy authenticating a client):
//   AuthenticationSASL ['SCRAM-SHA-256'] → client-first (in SASLInitialResponse) → start() → server-first
//   (SASLContinue) → client-final (SASLResponse) → finish() → ok + server-final (SASLFinal), or ok = false.
// Verification needs only StoredKey and ServerKey (the PG secret), never the password:
//   AuthMessage = client-first-bare "," server-first "," client-final-without-proof
//   ClientKey = proof XOR HMAC(StoredKey, AuthMessage); accept iff SHA256(ClientKey) = StoredKey
//   ServerSignature = HMAC(ServerKey, AuthMessage)
// Channel binding (-PLUS) is never offered: the proxy terminates TLS itself, so the client's view of
// the certificate would not match the server's. GS2 'n' and 'y' are accepted, 'p' is refused.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { PgtideError, ProtocolError } from '../protocol/errors.js';
import { AuthenticationError } from './errors.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** PG's default (scram_iterations, PG16+) */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** Largest SASL message accepted from a client or server (PG: PG_MAX_AUTH_TOKEN_LENGTH is 65535; SASL exchanges are tiny). */
export const MAX_SASL_MESSAGE = 1024;
/** Upper bound on a server-chosen iteration count, so a hostile server cannot stall the event loop (node-postgres uses 100000 too). */
export const MAX_CLIENT_ITERATIONS = 100000;
/** Random bytes in a nonce; PG uses 18 (SCRAM_RAW_NONCE_LEN). */
const NONCE_BYTES = 18;
const KEY_LENGTH = 32;

export interface ScramSecret {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

// ---------------------------------------------------------------------------------------------
// SASLprep (RFC 4013), as far as it changes bytes. PG runs it on the password and, if the result
// contains prohibited characters, falls back to the raw password; ASCII passes unchanged.

const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// eslint-disable-next-line no-misleading-character-class
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// Prohibited output (RFC 4013 §2.3) approximated by Unicode categories: controls, private use,
// surrogates, unassigned, noncharacters, and the display/tagging characters of tables C.8/C.9.
const PROHIBITED = /[\p{Cc}\p{Co}\p{Cs}\p{Cn}\u0340\u0341\u200E\u200F\u202A-\u202E\u206A-\u206F\u{E0001}\u{E0020}-\u{E007F}]/u;

export function saslprep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const mapped = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (mapped.length === 0 || PROHIBITED.test(mapped)) return password;
  return mapped;
}

// ---------------------------------------------------------------------------------------------
// Primitives

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Equal-length comparison in constant time; lengths are public (always 32 here). */
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(saslprep(password), 'utf8'), salt, iterations, KEY_LENGTH, 'sha256');
}

function keysFromSalted(salted: Buffer): { clientKey: Buffer; serverKey: Buffer; storedKey: Buffer } {
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, serverKey: hmac(salted, 'Server Key'), storedKey: sha256(clientKey) };
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(s: string, fail: () => never): Buffer {
  if (s.length % 4 !== 0 || !B64.test(s)) fail();
  return Buffer.from(s, 'base64');
}

// ---------------------------------------------------------------------------------------------
// Secrets

/** A PG-format secret: `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` (base64 parts). */
export function makeScramSecret(password: string, opts: { iterations?: number; salt?: Buffer } = {}): string {
  const iterations = opts.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  const salt = opts.salt ?? randomBytes(16);
  const { storedKey, serverKey } = keysFromSalted(saltedPassword(password, salt, iterations));
  return `${SCRAM_SHA_256}$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

const SECRET_RE = /^SCRAM-SHA-256\$(\d{1,9}):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

export function isScramSecret(s: string): boolean {
  return SECRET_RE.test(s);
}

export function parseScramSecret(secret: string): ScramSecret {
  const m = SECRET_RE.exec(secret);
  const fail = (): never => {
    throw new PgtideError('INVALID_SCRAM_SECRET', 'malformed SCRAM secret', { sqlstate: '22023' });
  };
  if (!m) return fail();
  const iterations = Number(m[1]);
  const salt = decodeBase64(m[2]!, fail);
  const storedKey = decodeBase64(m[3]!, fail);
  const serverKey = decodeBase64(m[4]!, fail);
  if (iterations < 1 || salt.length === 0 || storedKey.length !== KEY_LENGTH || serverKey.length !== KEY_LENGTH) fail();
  return { iterations, salt, storedKey, serverKey };
}

/** Whether a cleartext password matches a SCRAM secret (for `password` auth against a SCRAM-stored role). */
export function verifyScramPassword(password: string, secret: string | ScramSecret): boolean {
  const s = typeof secret === 'string' ? parseScramSecret(secret) : secret;
  const { storedKey, serverKey } = keysFromSalted(saltedPassword(password, s.salt, s.iterations));
  // both compared, so the time does not tell which one differed
  return safeEqual(storedKey, s.storedKey) && safeEqual(serverKey, s.serverKey);
}

// ---------------------------------------------------------------------------------------------
// Attribute parsing shared by both sides

function malformed(detail: string): never {
  throw new ProtocolError('malformed SCRAM message', { detail });
}

/** Printable ASCII except ',' (RFC 5802 `printable`). */
function isPrintableNonce(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

function decodeMessage(buf: Buffer, what: string): string {
  if (buf.length > MAX_SASL_MESSAGE) malformed(`${what} is longer than ${MAX_SASL_MESSAGE} bytes`);
  // SCRAM messages are UTF-8; a NUL or invalid sequence means garbage, not a user name
  const s = buf.toString('utf8');
  if (s.includes('\0') || s.includes('\uFFFD') || Buffer.byteLength(s) !== buf.length) malformed(`${what} is not valid UTF-8`);
  return s;
}

/** Splits "a=x,b=y" into attributes, checking each is `letter=`. */
function attributes(s: string, what: string): [string, string][] {
  return s.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=' || !/[A-Za-z]/.test(part[0]!)) malformed(`${what}: expected attribute, got "${part.slice(0, 20)}"`);
    return [part[0]!, part.slice(2)] as [string, string];
  });
}

// ---------------------------------------------------------------------------------------------
// Server side

export interface ScramServerOptions {
  /** test hook: the server's part of the nonce (printable, no ','); random otherwise */
  serverNonce?: string;
}

export interface ScramFinishResult {
  ok: boolean;
  /** to send in AuthenticationSASLFinal when ok */
  serverFinal?: Buffer;
  /** the client's ClientKey when ok: with the same salt and iterations on a server, it can log in there in the client's name */
  clientKey?: Buffer;
}

const enum ServerState {
  Initial,
  SentServerFirst,
  Done,
}

export class ScramServerSession {
  private readonly secret: ScramSecret;
  /** unknown user: run the exchange on a made-up secret and fail at the end, as PG does, so user names cannot be probed */
  private readonly mock: boolean;
  private readonly serverNonceOpt: string | undefined;
  private state = ServerState.Initial;
  private gs2Header = '';
  private nonce = '';
  private clientFirstBare = '';
  private serverFirst = '';

  /** `secret` null = the user does not exist or has no SCRAM secret; the exchange then always fails. */
  constructor(secret: string | ScramSecret | null, opts: ScramServerOptions = {}) {
    this.mock = secret === null;
    if (secret === null) {
      this.secret = { iterations: DEFAULT_SCRAM_ITERATIONS, salt: randomBytes(16), storedKey: randomBytes(KEY_LENGTH), serverKey: randomBytes(KEY_LENGTH) };
    } else {
      this.secret = typeof secret === 'string' ? parseScramSecret(secret) : secret;
    }
    this.serverNonceOpt = opts.serverNonce;
  }

  /** client-first-message → server-first-message. Throws ProtocolError on malformed input. */
  start(clientFirst: Buffer): Buffer {
    if (this.state !== ServerState.Initial) malformed('client-first-message sent twice');
    const msg = decodeMessage(clientFirst, 'client-first-message');
    // gs2-header = cbind-flag "," [authzid] ","
    let gs2: string;
    if (msg.startsWith('n,') || msg.startsWith('y,')) gs2 = msg.slice(0, 2);
    else if (msg.startsWith('p=')) {
      throw new ProtocolError('malformed SCRAM message', { detail: 'The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.' });
    } else return malformed('unexpected channel-binding flag');
    const comma = msg.indexOf(',', 2);
    if (comma < 0) malformed('missing authzid separator');
    if (comma !== 2) {
      throw new PgtideError('SCRAM_AUTHZID', 'client uses authorization identity, but it is not supported', { sqlstate: '0A000', severity: 'FATAL' });
    }
    this.gs2Header = gs2 + ',';
    this.clientFirstBare = msg.slice(comma + 1);
    const attrs = attributes(this.clientFirstBare, 'client-first-message');
    if (attrs[0]![0] === 'm') malformed('mandatory extensions are not supported');
    // PG ignores the user name sent here (the startup packet's counts) but requires the attribute
    if (attrs.length < 2 || attrs[0]![0] !== 'n' || attrs[1]![0] !== 'r') malformed('expected n= and r= attributes');
    const clientNonce = attrs[1]![1];
    if (!isPrintableNonce(clientNonce)) malformed('invalid client nonce');
    const serverNonce = this.serverNonceOpt ?? randomBytes(NONCE_BYTES).toString('base64');
    this.nonce = clientNonce + serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.secret.salt.toString('base64')},i=${this.secret.iterations}`;
    this.state = ServerState.SentServerFirst;
    return Buffer.from(this.serverFirst, 'ascii');
  }

  /** client-final-message → verdict. Throws ProtocolError if malformed; a wrong proof is `ok: false`. */
  finish(clientFinal: Buffer): ScramFinishResult {
    if (this.state !== ServerState.SentServerFirst) malformed('client-final-message out of order');
    this.state = ServerState.Done;
    const msg = decodeMessage(clientFinal, 'client-final-message');
    const proofAt = msg.lastIndexOf(',p=');
    if (proofAt < 0) malformed('missing proof');
    const withoutProof = msg.slice(0, proofAt);
    const attrs = attributes(withoutProof, 'client-final-message');
    if (attrs.length < 2 || attrs[0]![0] !== 'c' || attrs[1]![0] !== 'r') malformed('expected c= and r= attributes');
    const cbind = decodeBase64(attrs[0]![1], () => malformed('invalid channel binding data'));
    if (cbind.toString('latin1') !== this.gs2Header) malformed('unexpected SCRAM channel-binding attribute in client-final-message');
    if (attrs[1]![1] !== this.nonce) malformed('SCRAM nonce mismatch');
    const proof = decodeBase64(msg.slice(proofAt + 3), () => malformed('invalid proof encoding'));
    if (proof.length !== KEY_LENGTH) malformed('invalid proof length');

    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.secret.storedKey, authMessage));
    const ok = safeEqual(sha256(clientKey), this.secret.storedKey) && !this.mock;
    if (!ok) return { ok: false };
    return { ok: true, serverFinal: Buffer.from(`v=${hmac(this.secret.serverKey, authMessage).toString('base64')}`, 'ascii'), clientKey };
  }
}

// ---------------------------------------------------------------------------------------------
// Client side

export interface ScramClientOptions {
  /** test hook: the client nonce (printable, no ','); random otherwise */
  clientNonce?: string;
  /**
   * Log in with keys instead of a password (pass-through of a client's ClientKey, as PgBouncer
   * does); only works when the server's secret has the salt and iteration count they came from.
   */
  keys?: { clientKey: Buffer; serverKey: Buffer };
  maxIterations?: number;
  /** GS2 flag: 'n' (default) = no channel binding; 'y' = could bind but the server offered no -PLUS (what libpq sends over TLS then) */
  gs2Flag?: 'n' | 'y';
  /** the n= attribute; PG ignores it (the startup packet names the user), so libpq sends it empty */
  username?: string;
}

/** PBKDF2 results by password/salt/iterations: a pool logs in many times with the same secret, and 4096 rounds cost milliseconds of a blocked loop. */
const saltedCache = new Map<string, Buffer>();
const SALTED_CACHE_MAX = 64;

function cachedSalted(password: string, salt: Buffer, iterations: number): Buffer {
  const key = `${iterations}:${salt.toString('base64')}:${password}`;
  let v = saltedCache.get(key);
  if (v === undefined) {
    v = saltedPassword(password, salt, iterations);
    if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.delete(saltedCache.keys().next().value!);
    saltedCache.set(key, v);
  }
  return v;
}

export class ScramClientSession {
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private readonly gs2Header: string;
  private expectedServerSignature: Buffer | null = null;

  constructor(
    private readonly password: string,
    private readonly opts: ScramClientOptions = {},
  ) {
    this.clientNonce = opts.clientNonce ?? randomBytes(NONCE_BYTES).toString('base64');
    // RFC 5802 saslname: ',' and '=' are escaped
    const user = (opts.username ?? '').replaceAll('=', '=3D').replaceAll(',', '=2C');
    this.clientFirstBare = `n=${user},r=${this.clientNonce}`;
    this.gs2Header = `${opts.gs2Flag ?? 'n'},,`;
  }

  /** For SASLInitialResponse. */
  clientFirst(): Buffer {
    return Buffer.from(`${this.gs2Header}${this.clientFirstBare}`, 'utf8');
  }

  /** server-first-message (SASLContinue data) → client-final-message (SASLResponse data). */
  clientFinal(serverFirst: Buffer): Buffer {
    const msg = decodeMessage(serverFirst, 'server-first-message');
    const attrs = attributes(msg, 'server-first-message');
    if (attrs[0]?.[0] === 'm') malformed('mandatory extensions are not supported');
    if (attrs.length < 3 || attrs[0]![0] !== 'r' || attrs[1]![0] !== 's' || attrs[2]![0] !== 'i') malformed('expected r=, s= and i= attributes');
    const nonce = attrs[0]![1];
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length || !isPrintableNonce(nonce)) malformed('server nonce does not extend the client nonce');
    const salt = decodeBase64(attrs[1]![1], () => malformed('invalid salt'));
    if (salt.length === 0) malformed('empty salt');
    if (!/^[1-9]\d{0,9}$/.test(attrs[2]![1])) malformed('invalid iteration count');
    const iterations = Number(attrs[2]![1]);
    if (iterations > (this.opts.maxIterations ?? MAX_CLIENT_ITERATIONS)) malformed(`iteration count ${iterations} is above the limit`);

    let clientKey: Buffer;
    let serverKey: Buffer;
    if (this.opts.keys) {
      ({ clientKey, serverKey } = this.opts.keys);
    } else {
      ({ clientKey, serverKey } = keysFromSalted(cachedSalted(this.password, salt, iterations)));
    }
    const withoutProof = `c=${Buffer.from(this.gs2Header).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${msg},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'ascii');
  }

  /** server-final-message (SASLFinal data): throws unless the server proved it knows the secret too. */
  verifyServerFinal(serverFinal: Buffer): void {
    if (this.expectedServerSignature === null) malformed('server-final-message out of order');
    const msg = decodeMessage(serverFinal, 'server-final-message');
    if (msg.startsWith('e=')) throw new AuthenticationError(`SCRAM authentication failed: ${msg.slice(2)}`);
    const attrs = attributes(msg, 'server-final-message');
    if (attrs[0]![0] !== 'v') malformed('expected v= attribute');
    const sig = decodeBase64(attrs[0]![1], () => malformed('invalid server signature'));
    if (!safeEqual(sig, this.expectedServerSignature)) {
      throw new AuthenticationError('the server did not prove it knows the password (SCRAM server signature mismatch)', { sqlstate: '28000' });
    }
  }
}
