// Tests the zero-copy framing of server bytes: arbitrary splits, run forwarding without copies, limits and the parse helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as bw from '../../../proxy/protocol/backend-writer.js';
import {
  BackendCode,
  BackendScanner,
  commandCompleteTag,
  parseBackendKeyData,
  parseCopyResponse,
  parseDataRow,
  parseErrorFields,
  parseNotificationResponse,
  parseParameterStatus,
  parseRowDescription,
  parseSASLMechanisms,
  readyForQueryStatus,
  authenticationType,
} from '../../../proxy/protocol/backend-scanner.js';
import { ProtocolError } from '../../../proxy/protocol/errors.js';

const MESSAGES = [
  bw.rowDescription([{ name: 'id', typeOid: 23 }]),
  bw.dataRow(['1']),
  bw.dataRow(['x'.repeat(5000)]),
  bw.dataRow([null]),
  bw.commandComplete('SELECT 3'),
  bw.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }),
  bw.errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "t" does not exist', position: 15 }),
  bw.readyForQuery('E'),
  bw.emptyQueryResponse(),
];
const STREAM = Buffer.concat(MESSAGES);

/** Feeds chunks like a socket handler: drains after each push, forwards runs as subarrays. */
function scanChunks(chunks: Buffer[]): { frames: Buffer[]; forwarded: Buffer[] } {
  const s = new BackendScanner();
  const frames: Buffer[] = [];
  const forwarded: Buffer[] = [];
  for (const c of chunks) {
    s.push(c);
    let runStart = -1;
    let runEnd = -1;
    for (const m of s) {
      if (runStart < 0) runStart = m.start;
      assert.equal(m.start, runEnd < 0 ? runStart : runEnd, 'frames between pushes are contiguous');
      runEnd = m.end;
      frames.push(Buffer.from(s.buffer.subarray(m.start, m.end)));
    }
    if (runStart >= 0) forwarded.push(s.buffer.subarray(runStart, runEnd));
  }
  assert.equal(s.pendingBytes, 0);
  return { frames, forwarded };
}

test('split at every byte boundary: same frames, and the forwarded runs rebuild the stream exactly', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const { frames, forwarded } = scanChunks([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
    assert.deepEqual(frames, MESSAGES, `cut at ${cut}`);
    assert.deepEqual(Buffer.concat(forwarded), STREAM);
  }
});

test('random small chunks: same frames', () => {
  let seed = 3;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
  for (let round = 0; round < 300; round++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < STREAM.length; ) {
      const n = rnd(round % 2 ? 9 : 3000);
      chunks.push(STREAM.subarray(i, i + n));
      i += n;
    }
    const { frames, forwarded } = scanChunks(chunks);
    assert.deepEqual(frames, MESSAGES);
    assert.deepEqual(Buffer.concat(forwarded), STREAM);
  }
});

test('a chunk of whole messages is forwarded as the chunk itself: zero copies', () => {
  const s = new BackendScanner();
  s.push(STREAM);
  assert.equal(s.buffer, STREAM);
  let n = 0;
  let last = 0;
  for (let m = s.next(); m !== undefined; m = s.next()) {
    n++;
    last = m.end;
  }
  assert.equal(n, MESSAGES.length);
  const run = s.buffer.subarray(0, last);
  assert.equal(run.buffer, STREAM.buffer);
  assert.equal(run.byteOffset, STREAM.byteOffset);
  // and the next whole chunk becomes the buffer as is
  const next = Buffer.from(bw.readyForQuery('I'));
  s.push(next);
  assert.equal(s.buffer, next);
});

test('next() reuses one frame object', () => {
  const s = new BackendScanner();
  s.push(STREAM);
  const a = s.next();
  const b = s.next();
  assert.equal(a, b);
});

test('a huge message in many chunks is assembled once, and nothing is returned before it is complete', () => {
  const big = bw.dataRow([Buffer.alloc(1_000_000, 1)]);
  const s = new BackendScanner();
  const tail = Buffer.from(bw.commandComplete('SELECT 1'));
  const stream = Buffer.concat([big, tail]);
  const buffers = new Set<Buffer>();
  for (let i = 0; i < stream.length; i += 65536) {
    s.push(stream.subarray(i, i + 65536));
    buffers.add(s.buffer);
    if (i + 65536 < big.length) assert.equal(s.next(), undefined);
  }
  const m1 = s.next()!;
  assert.equal(m1.code, BackendCode.DataRow);
  assert.equal(m1.end - m1.start, big.length);
  const m2 = s.next()!;
  assert.equal(commandCompleteTag(s.buffer, m2.start, m2.end), 'SELECT 1');
  // the first chunk is the buffer while nothing straddles; then exactly one assembled buffer
  assert.ok(buffers.size <= 2, `buffer replaced ${buffers.size} times`);
});

test('takeRemaining hands over what follows, wherever it was', () => {
  const s = new BackendScanner();
  s.push(Buffer.concat([bw.readyForQuery('I'), bw.dataRow(['a']).subarray(0, 4)]));
  assert.equal(s.next()!.code, BackendCode.ReadyForQuery);
  assert.deepEqual(s.takeRemaining(), bw.dataRow(['a']).subarray(0, 4));
  assert.equal(s.takeRemaining(), null);
  s.push(bw.dataRow(['a']).subarray(0, 3));
  s.push(bw.dataRow(['a']).subarray(3, 5));
  assert.deepEqual(s.takeRemaining(), bw.dataRow(['a']).subarray(0, 5));
  assert.equal(s.pendingBytes, 0);
});

test('bad lengths and unknown types are ProtocolErrors, even when the header straddles chunks', () => {
  const s = new BackendScanner();
  s.push(Buffer.from([0x44, 0, 0, 0, 3]));
  assert.throws(() => s.next(), ProtocolError);
  const u = new BackendScanner();
  u.push(Buffer.from([0x21, 0, 0, 0, 4]));
  assert.throws(() => u.next(), ProtocolError);
  const big = new BackendScanner({ maxMessageLength: 1000 });
  big.push(Buffer.from([0x44, 0, 0]));
  assert.equal(big.next(), undefined);
  assert.throws(() => big.push(Buffer.from([0x10, 0])), ProtocolError);
});

test('helpers read ReadyForQuery, ErrorResponse, CommandComplete, ParameterStatus, BackendKeyData, RowDescription, DataRow', () => {
  const s = new BackendScanner();
  s.push(
    Buffer.concat([
      bw.readyForQuery('T'),
      bw.errorResponse({ severity: 'ERROR', code: '23505', message: 'dup', detail: 'Key (id)=(1) already exists.' }),
      bw.commandComplete('INSERT 0 1'),
      bw.parameterStatus('client_encoding', 'UTF8'),
      bw.backendKeyData(77, Buffer.from([9, 8, 7, 6])),
      bw.rowDescription([{ name: 'a', typeOid: 25, tableOid: 5, columnAttr: 2, typeSize: -1, typeMod: 4, format: 1 }]),
      bw.dataRow(['x', null]),
      bw.copyInResponse(0, [0, 0]),
      bw.notificationResponse(5, 'ch', 'pl'),
      bw.authenticationSASL(['SCRAM-SHA-256']),
    ]),
  );
  const b = () => s.buffer;
  let m = s.next()!;
  assert.equal(readyForQueryStatus(b(), m.start), 'T');
  m = s.next()!;
  assert.deepEqual(parseErrorFields(b(), m.start, m.end), { S: 'ERROR', V: 'ERROR', C: '23505', M: 'dup', D: 'Key (id)=(1) already exists.' });
  m = s.next()!;
  assert.equal(commandCompleteTag(b(), m.start, m.end), 'INSERT 0 1');
  m = s.next()!;
  assert.deepEqual(parseParameterStatus(b(), m.start, m.end), { name: 'client_encoding', value: 'UTF8' });
  m = s.next()!;
  assert.deepEqual(parseBackendKeyData(b(), m.start, m.end), { pid: 77, secret: Buffer.from([9, 8, 7, 6]) });
  m = s.next()!;
  assert.deepEqual(parseRowDescription(b(), m.start, m.end), [{ name: 'a', tableOid: 5, columnAttr: 2, typeOid: 25, typeSize: -1, typeMod: 4, format: 1 }]);
  m = s.next()!;
  assert.deepEqual(parseDataRow(b(), m.start, m.end), [Buffer.from('x'), null]);
  m = s.next()!;
  assert.deepEqual(parseCopyResponse(b(), m.start, m.end), { format: 0, columnFormats: [0, 0] });
  m = s.next()!;
  assert.deepEqual(parseNotificationResponse(b(), m.start, m.end), { pid: 5, channel: 'ch', payload: 'pl' });
  m = s.next()!;
  assert.equal(authenticationType(b(), m.start, m.end), 10);
  assert.deepEqual(parseSASLMechanisms(b(), m.start, m.end), ['SCRAM-SHA-256']);
  assert.equal(s.next(), undefined);
});

test('helpers never read past the message end', () => {
  // an ErrorResponse whose last field lacks its NUL, followed by another message containing NULs
  const e = Buffer.from(bw.errorResponse({ severity: 'ERROR', code: 'XX000', message: 'm' }));
  const broken = e.subarray(0, e.length - 2);
  broken.writeInt32BE(broken.length - 1, 1);
  const buf = Buffer.concat([broken, bw.commandComplete('SELECT 1')]);
  assert.throws(() => parseErrorFields(buf, 0, broken.length), ProtocolError);
  const cc = Buffer.from(bw.commandComplete('TAG'));
  const noNul = Buffer.concat([cc.subarray(0, cc.length - 1), Buffer.from([0])]);
  assert.throws(() => commandCompleteTag(noNul, 0, cc.length - 1), ProtocolError);
  const rd = bw.rowDescription([{ name: 'a', typeOid: 25 }]);
  assert.throws(() => parseRowDescription(rd, 0, rd.length - 1), ProtocolError);
  const dr = bw.dataRow(['abc']);
  assert.throws(() => parseDataRow(dr, 0, dr.length - 1), ProtocolError);
  assert.throws(() => readyForQueryStatus(Buffer.from([0x5a, 0, 0, 0, 5, 0x58]), 0), ProtocolError);
});
