// Tests the incremental framing of client bytes: arbitrary splits, batching, limits and the startup phase.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontendReader, type FrontendMessage } from '../../../proxy/protocol/frontend-reader.js';
import { ProtocolError } from '../../../proxy/protocol/errors.js';
import { parseStartupPacket } from '../../../proxy/protocol/frontend-messages.js';
import { SYNC, buildBind, buildExecute, buildParse, buildQuery, buildStartup, buildDescribe, FLUSH, TERMINATE } from '../../../proxy/protocol/frontend-writer.js';

function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(80877103, 4);
  return b;
}

const STARTUP = buildStartup({ user: 'alice', database: 'shop', application_name: 'tëst' });
const MESSAGES = [
  buildQuery('SELECT 1'),
  buildParse('s1', 'SELECT $1::int', [23]),
  buildBind('', 's1', [Buffer.from('42'), null]),
  buildDescribe('P', ''),
  buildExecute('', 0),
  SYNC,
  buildQuery('x'.repeat(3000)),
  FLUSH,
  TERMINATE,
];
const STREAM = Buffer.concat([STARTUP, ...MESSAGES]);

function readAll(reader: FrontendReader, chunks: Buffer[]): FrontendMessage[] {
  const out: FrontendMessage[] = [];
  for (const c of chunks) {
    reader.push(c);
    for (let m = reader.next(); m !== undefined; m = reader.next()) out.push({ code: m.code, bytes: Buffer.from(m.bytes) });
  }
  return out;
}

function assertExpected(got: FrontendMessage[]): void {
  assert.equal(got.length, 1 + MESSAGES.length);
  assert.equal(got[0]!.code, 0);
  assert.deepEqual(got[0]!.bytes, STARTUP);
  for (let i = 0; i < MESSAGES.length; i++) {
    assert.equal(got[i + 1]!.code, MESSAGES[i]![0]);
    assert.deepEqual(got[i + 1]!.bytes, MESSAGES[i]);
  }
}

test('the whole stream in one chunk gives every message, as subarrays of the chunk', () => {
  const r = new FrontendReader();
  r.push(STREAM);
  const first = r.next()!;
  assert.equal(first.bytes.buffer, STREAM.buffer, 'no copy when the message lies in one chunk');
  assert.equal(r.startupPhase, false);
  const rest: FrontendMessage[] = [];
  for (let m = r.next(); m !== undefined; m = r.next()) rest.push(m);
  assertExpected([first, ...rest]);
  assert.equal(r.pendingBytes, 0);
});

test('split at every byte boundary gives the same messages', () => {
  for (let cut = 1; cut < STREAM.length; cut++) {
    const got = readAll(new FrontendReader(), [STREAM.subarray(0, cut), STREAM.subarray(cut)]);
    assertExpected(got);
  }
});

test('one byte per chunk gives the same messages, and pendingBytes counts what is held', () => {
  const r = new FrontendReader();
  const chunks = [...STREAM].map((b) => Buffer.from([b]));
  assertExpected(readAll(r, chunks.slice(0, 10)).concat(readAll(r, chunks.slice(10))));
  const r2 = new FrontendReader();
  r2.push(STREAM.subarray(0, 3));
  assert.equal(r2.next(), undefined);
  assert.equal(r2.pendingBytes, 3);
});

test('random chunkings give the same messages', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
  for (let round = 0; round < 200; round++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < STREAM.length; ) {
      const n = rnd(700);
      chunks.push(STREAM.subarray(i, i + n));
      i += n;
    }
    assertExpected(readAll(new FrontendReader(), chunks));
  }
});

test('a 2 GB length is refused as soon as the header arrives, before any body is buffered', () => {
  const r = new FrontendReader();
  r.startupPhase = false;
  const h = Buffer.alloc(5);
  h[0] = 0x51;
  h.writeUInt32BE(0x80000000 - 1, 1);
  r.push(h);
  assert.throws(() => r.next(), (e: unknown) => e instanceof ProtocolError && e.sqlstate === '08P01' && /invalid message length/.test(e.message));
});

test('a length field split across chunks is still checked', () => {
  const r = new FrontendReader({ maxMessageLength: 100 });
  r.startupPhase = false;
  const h = Buffer.from([0x51, 0, 0, 0, 200]);
  r.push(h.subarray(0, 3));
  assert.equal(r.next(), undefined);
  r.push(h.subarray(3));
  assert.throws(() => r.next(), ProtocolError);
});

test('lengths below 4 are refused', () => {
  for (const len of [0, 3, -1]) {
    const r = new FrontendReader();
    r.startupPhase = false;
    const h = Buffer.alloc(5);
    h[0] = 0x53;
    h.writeInt32BE(len, 1);
    r.push(h);
    assert.throws(() => r.next(), ProtocolError, `length ${len}`);
  }
});

test('small message types are capped at 10000 bytes, big ones are not', () => {
  const r = new FrontendReader();
  r.startupPhase = false;
  r.push(Buffer.from([0x53, 0, 0, 0x27, 0x15])); // Sync with length 10005: body 10001
  assert.throws(() => r.next(), ProtocolError);
  const q = new FrontendReader();
  q.startupPhase = false;
  q.push(buildQuery('y'.repeat(20000)));
  assert.equal(q.next()!.bytes.length, 20000 + 6);
});

test('password messages are capped at 65535 bytes', () => {
  const r = new FrontendReader();
  r.startupPhase = false;
  const h = Buffer.alloc(5);
  h[0] = 0x70;
  h.writeInt32BE(65540 + 4, 1);
  r.push(h);
  assert.throws(() => r.next(), ProtocolError);
});

test('an unknown type byte is refused', () => {
  const r = new FrontendReader();
  r.startupPhase = false;
  r.push(Buffer.from([0x5a, 0, 0, 0, 4]));
  assert.throws(() => r.next(), (e: unknown) => e instanceof ProtocolError && /invalid frontend message type/.test(e.message));
});

test('a startup packet longer than 10000 bytes or shorter than 8 is refused', () => {
  const big = Buffer.alloc(8);
  big.writeInt32BE(10001, 0);
  const r = new FrontendReader();
  r.push(big);
  assert.throws(() => r.next(), ProtocolError);
  const small = new FrontendReader();
  small.push(Buffer.from([0, 0, 0, 7, 0, 0, 0]));
  assert.throws(() => small.next(), ProtocolError);
  const custom = new FrontendReader({ maxStartupLength: 20 });
  custom.push(STARTUP);
  assert.throws(() => custom.next(), ProtocolError);
});

test('SSLRequest keeps the startup phase, so the following StartupMessage is framed without type byte', () => {
  const r = new FrontendReader();
  r.push(Buffer.concat([sslRequest(), STARTUP, SYNC]));
  const ssl = r.next()!;
  assert.deepEqual(parseStartupPacket(ssl.bytes), { kind: 'ssl' });
  assert.equal(r.startupPhase, true);
  r.startupPhase = true; // what a session does after answering 'N': harmless
  const startup = r.next()!;
  assert.equal(startup.code, 0);
  const p = parseStartupPacket(startup.bytes);
  assert.equal(p.kind, 'startup');
  assert.equal(p.kind === 'startup' && p.params['application_name'], 'tëst');
  assert.equal(r.startupPhase, false);
  assert.equal(r.next()!.code, 0x53);
});

test('drain() hands back bytes that arrived before a handshake finished', () => {
  const r = new FrontendReader();
  r.push(Buffer.concat([sslRequest(), Buffer.from('sneaky')]));
  r.next();
  assert.equal(r.pendingBytes, 6);
  assert.equal(r.drain().toString(), 'sneaky');
  assert.equal(r.pendingBytes, 0);
  assert.equal(r.next(), undefined);
});
