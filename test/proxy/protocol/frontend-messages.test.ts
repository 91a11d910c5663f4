// Round-trips every frontend builder through its parser, cross-checks against pg-protocol's serializer, and truncates every message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'pg-protocol';
import { ProtocolError } from '../../../proxy/protocol/errors.js';
import {
  bindStatementName,
  parseBind,
  parseClose,
  parseCopyFail,
  parseDescribe,
  parseExecute,
  parseParse,
  parsePasswordMessage,
  parseQuery,
  parseSASLInitialResponse,
  parseSASLResponse,
  parseStartupPacket,
} from '../../../proxy/protocol/frontend-messages.js';
import {
  COPY_DONE,
  FLUSH,
  SYNC,
  TERMINATE,
  buildBind,
  buildCancelRequest,
  buildClose,
  buildCopyData,
  buildCopyFail,
  buildDescribe,
  buildExecute,
  buildParse,
  buildPasswordMessage,
  buildQuery,
  buildSASLInitialResponse,
  buildSASLResponse,
  buildStartup,
  rewriteBindStatement,
  rewriteCloseStatement,
  rewriteDescribeStatement,
} from '../../../proxy/protocol/frontend-writer.js';

test('startup packet round-trips, including non-ASCII and a __proto__ parameter', () => {
  const params: Record<string, string> = { user: 'ålice', database: 'db', application_name: 'x y' };
  Object.defineProperty(params, '__proto__', { value: 'v', enumerable: true });
  const p = parseStartupPacket(buildStartup(params));
  assert.equal(p.kind, 'startup');
  if (p.kind !== 'startup') return;
  assert.equal(p.protocolVersion, 196608);
  assert.deepEqual(Object.keys(p.params), ['user', 'database', 'application_name', '__proto__']);
  assert.equal(p.params['user'], 'ålice');
  assert.equal(p.params['application_name'], 'x y');
  assert.equal(Object.getOwnPropertyDescriptor(p.params, '__proto__')?.value, 'v');
  assert.equal(Object.getPrototypeOf(p.params), null);
});

test('buildStartup is read back by our parser like pg-protocol\'s startup message', () => {
  // pg-protocol appends client_encoding=UTF8 itself; with it given first, both carry the same pairs
  const opts = { user: 'bob', database: 'shop', client_encoding: 'UTF8' };
  const theirs = parseStartupPacket(serialize.startup({ user: 'bob', database: 'shop' }));
  const ours = parseStartupPacket(buildStartup(opts));
  assert.deepEqual(ours, theirs);
  assert.equal(buildStartup(opts).length, serialize.startup({ user: 'bob', database: 'shop' }).length);
});

test('SSLRequest, GSSENCRequest and CancelRequest are recognised', () => {
  assert.deepEqual(parseStartupPacket(serialize.requestSsl()), { kind: 'ssl' });
  const gss = Buffer.alloc(8);
  gss.writeInt32BE(8, 0);
  gss.writeInt32BE(80877104, 4);
  assert.deepEqual(parseStartupPacket(gss), { kind: 'gssenc' });
  const secret = Buffer.from([1, 2, 3, 4]);
  assert.deepEqual(parseStartupPacket(buildCancelRequest(4242, secret)), { kind: 'cancel', pid: 4242, secret });
  assert.deepEqual(buildCancelRequest(4242, Buffer.from([0, 0, 1, 2])), serialize.cancel(4242, 258));
  const long = Buffer.alloc(32, 7);
  const c = parseStartupPacket(buildCancelRequest(-5, long));
  assert.deepEqual(c, { kind: 'cancel', pid: -5, secret: long });
});

test('unknown startup codes and protocol 2 are refused; cancel keys are 4..256 bytes', () => {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(12345, 4);
  assert.throws(() => parseStartupPacket(b), ProtocolError);
  const v2 = Buffer.alloc(9);
  v2.writeInt32BE(9, 0);
  v2.writeInt32BE(2 << 16, 4);
  assert.throws(() => parseStartupPacket(v2), (e: unknown) => e instanceof ProtocolError && e.sqlstate === '0A000');
  assert.throws(() => parseStartupPacket(buildCancelRequest(1, Buffer.alloc(3))), ProtocolError);
  assert.throws(() => parseStartupPacket(buildCancelRequest(1, Buffer.alloc(257))), ProtocolError);
  const noTerm = buildStartup({ user: 'a' }).subarray(0, -1);
  noTerm.writeInt32BE(noTerm.length, 0);
  assert.throws(() => parseStartupPacket(noTerm), ProtocolError);
});

test('Query round-trips and matches pg-protocol', () => {
  assert.equal(parseQuery(buildQuery('SELECT \'é\'')), "SELECT 'é'");
  assert.deepEqual(buildQuery('SELECT 1'), serialize.query('SELECT 1'));
  assert.throws(() => buildQuery('a\0b'), (e: unknown) => (e as { code?: string }).code === 'NUL_IN_STRING');
});

test('Parse round-trips (OIDs as unsigned) and matches pg-protocol', () => {
  const msg = buildParse('stmt', 'SELECT $1, $2', [23, 4294967295]);
  assert.deepEqual(parseParse(msg), { name: 'stmt', sql: 'SELECT $1, $2', paramTypes: [23, 4294967295] });
  assert.deepEqual(buildParse('s', 'SELECT $1', [25]), serialize.parse({ name: 's', text: 'SELECT $1', types: [25] }));
  assert.deepEqual(parseParse(buildParse('', 'x')), { name: '', sql: 'x', paramTypes: [] });
});

test('Bind round-trips with NULLs, binary values and formats; values are subarrays', () => {
  const bin = Buffer.from([0, 0, 0, 42]);
  const msg = buildBind('p1', 'st', ['hello', null, bin, ''], [0, 0, 1, 0], [1]);
  const b = parseBind(msg);
  assert.equal(b.portal, 'p1');
  assert.equal(b.statement, 'st');
  assert.deepEqual(b.paramFormats, [0, 0, 1, 0]);
  assert.deepEqual(b.params, [Buffer.from('hello'), null, bin, Buffer.alloc(0)]);
  assert.deepEqual(b.resultFormats, [1]);
  assert.equal(b.params[0]!.buffer, msg.buffer, 'no copy of parameter values');
  assert.equal(bindStatementName(msg), 'st');
  const ref = serialize.bind({ portal: 'p', statement: 's', values: ['a', null] });
  assert.deepEqual(parseBind(ref).params, [Buffer.from('a'), null]);
  assert.equal(bindStatementName(ref), 's');
});

test('Bind with more than one format but a different parameter count is refused', () => {
  assert.throws(() => parseBind(buildBind('', '', ['a', 'b', 'c'], [0, 1])), ProtocolError);
  assert.doesNotThrow(() => parseBind(buildBind('', '', ['a', 'b', 'c'], [1])));
});

test('rewrites replace only the statement name and keep everything else verbatim', () => {
  const bind = buildBind('portal', 'client_stmt', ['x', null], [0], [1, 0]);
  const rewritten = rewriteBindStatement(bind, 'pgtide_17');
  assert.deepEqual(parseBind(rewritten), { ...parseBind(bind), statement: 'pgtide_17' });
  assert.deepEqual(rewritten, buildBind('portal', 'pgtide_17', ['x', null], [0], [1, 0]));
  assert.deepEqual(parseDescribe(rewriteDescribeStatement(buildDescribe('S', 'a'), 'longer_name')), { kind: 'S', name: 'longer_name' });
  assert.deepEqual(parseClose(rewriteCloseStatement(buildClose('S', 'long_name'), '')), { kind: 'S', name: '' });
  assert.throws(() => rewriteBindStatement(buildQuery('x'), 'n'), ProtocolError);
});

test('Describe, Close and Execute round-trip and match pg-protocol', () => {
  assert.deepEqual(parseDescribe(buildDescribe('P', 'por')), { kind: 'P', name: 'por' });
  assert.deepEqual(parseClose(buildClose('S', 'st')), { kind: 'S', name: 'st' });
  assert.deepEqual(buildDescribe('S', 'x'), serialize.describe({ type: 'S', name: 'x' }));
  assert.deepEqual(buildClose('P', 'x'), serialize.close({ type: 'P', name: 'x' }));
  assert.deepEqual(parseExecute(buildExecute('p', 100)), { portal: 'p', maxRows: 100 });
  assert.deepEqual(buildExecute('p', 5), serialize.execute({ portal: 'p', rows: 5 }));
  const bad = buildDescribe('S', 'x');
  bad[5] = 0x58;
  assert.throws(() => parseDescribe(bad), ProtocolError);
});

test('constant messages match pg-protocol', () => {
  assert.deepEqual(SYNC, serialize.sync());
  assert.deepEqual(FLUSH, serialize.flush());
  assert.deepEqual(TERMINATE, serialize.end());
  assert.deepEqual(COPY_DONE, serialize.copyDone());
  assert.deepEqual(buildCopyData(Buffer.from('1\tx\n')), serialize.copyData(Buffer.from('1\tx\n')));
  assert.equal(parseCopyFail(buildCopyFail('aborted')), 'aborted');
  assert.deepEqual(buildCopyFail('no'), serialize.copyFail('no'));
});

test('password and SASL messages round-trip', () => {
  assert.equal(parsePasswordMessage(buildPasswordMessage('s3cret')), 's3cret');
  assert.deepEqual(buildPasswordMessage('pw'), serialize.password('pw'));
  const init = buildSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc'));
  assert.deepEqual(parseSASLInitialResponse(init), { mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc') });
  assert.deepEqual(init, serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'));
  assert.deepEqual(parseSASLInitialResponse(buildSASLInitialResponse('X', null)), { mechanism: 'X', data: null });
  assert.deepEqual(parseSASLResponse(buildSASLResponse(Buffer.from('c=biws'))), Buffer.from('c=biws'));
  assert.deepEqual(buildSASLResponse(Buffer.from('c=biws')), serialize.sendSCRAMClientFinalMessage('c=biws'));
});

test('every truncation of every message (length field adjusted) is a ProtocolError, never a RangeError', () => {
  const cases: [Buffer, (b: Buffer) => unknown][] = [
    [buildQuery('SELECT 1'), parseQuery],
    [buildParse('n', 'SELECT $1', [23, 25]), parseParse],
    [buildBind('p', 's', ['abc', null, 'de'], [0, 1, 0], [1, 1]), parseBind],
    [buildDescribe('S', 'name'), parseDescribe],
    [buildClose('P', 'name'), parseClose],
    [buildExecute('portal', 3), parseExecute],
    [buildCopyFail('why'), parseCopyFail],
    [buildPasswordMessage('pw'), parsePasswordMessage],
    [buildSASLInitialResponse('SCRAM-SHA-256', Buffer.from('data')), parseSASLInitialResponse],
  ];
  for (const [full, parse] of cases) {
    for (let len = 0; len < full.length; len++) {
      const t = Buffer.from(full.subarray(0, len));
      if (len >= 5) t.writeInt32BE(len - 1, 1);
      assert.throws(() => parse(t), ProtocolError, `${String.fromCharCode(full[0]!)} cut at ${len}`);
    }
    // a header that disagrees with the buffer, and the wrong type byte
    const wrongLen = Buffer.from(full);
    wrongLen.writeInt32BE(full.length + 10, 1);
    assert.throws(() => parse(wrongLen), ProtocolError);
    const wrongType = Buffer.from(full);
    wrongType[0] = 0x21;
    assert.throws(() => parse(wrongType), ProtocolError);
    // trailing garbage
    const longer = Buffer.concat([full, Buffer.from([1])]);
    longer.writeInt32BE(full.length, 1);
    assert.throws(() => parse(longer), ProtocolError);
  }
  // bindStatementName reads only the two names: cuts inside them fail, later cuts need not
  const bind = buildBind('portal', 'stmt', ['abc']);
  for (let len = 0; len < 5 + 'portal'.length + 1 + 'stmt'.length + 1; len++) {
    const t = Buffer.from(bind.subarray(0, len));
    if (len >= 5) t.writeInt32BE(len - 1, 1);
    assert.throws(() => bindStatementName(t), ProtocolError, `B cut at ${len}`);
  }
  // a Bind whose value length points past the end
  const b = buildBind('', '', ['abcd']);
  const at = b.indexOf(Buffer.from('abcd')) - 4;
  b.writeInt32BE(1000, at);
  assert.throws(() => parseBind(b), ProtocolError);
  b.writeInt32BE(-2, at);
  assert.throws(() => parseBind(b), ProtocolError);
});
