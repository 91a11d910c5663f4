// Checks the backend message builders by parsing their output with node-postgres's pg-protocol parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { parse } from 'pg-protocol';
import * as bw from '../../../proxy/protocol/backend-writer.js';
import { BackendScanner, parseNegotiateProtocolVersion, parseParameterDescription } from '../../../proxy/protocol/backend-scanner.js';

// pg-protocol's message classes are loosely typed; the tests read fields by name
type Msg = Record<string, any>;

async function pgParse(...bufs: Buffer[]): Promise<Msg[]> {
  const stream = new PassThrough();
  const out: Msg[] = [];
  const done = parse(stream, (m) => out.push(m as unknown as Msg));
  stream.end(Buffer.concat(bufs));
  await done;
  return out;
}

async function one(buf: Buffer): Promise<Msg> {
  const msgs = await pgParse(buf);
  assert.equal(msgs.length, 1);
  return msgs[0]!;
}

test('authentication requests', async () => {
  assert.equal((await one(bw.authenticationOk())).name, 'authenticationOk');
  assert.equal(bw.authenticationOk(), bw.authenticationOk(), 'constant built once');
  assert.equal((await one(bw.authenticationCleartextPassword())).name, 'authenticationCleartextPassword');
  const md5 = await one(bw.authenticationMD5Password(Buffer.from([1, 2, 3, 4])));
  assert.equal(md5.name, 'authenticationMD5Password');
  assert.deepEqual(md5.salt, Buffer.from([1, 2, 3, 4]));
  const sasl = await one(bw.authenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']));
  assert.equal(sasl.name, 'authenticationSASL');
  assert.deepEqual(sasl.mechanisms, ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']);
  const cont = await one(bw.authenticationSASLContinue(Buffer.from('r=abc,s=c2FsdA==,i=4096')));
  assert.equal(cont.name, 'authenticationSASLContinue');
  assert.equal(cont.data, 'r=abc,s=c2FsdA==,i=4096');
  const fin = await one(bw.authenticationSASLFinal(Buffer.from('v=sig')));
  assert.equal(fin.name, 'authenticationSASLFinal');
  assert.equal(fin.data, 'v=sig');
});

test('session start messages', async () => {
  const ps = await one(bw.parameterStatus('TimeZone', 'Europe/Zürich'));
  assert.equal(ps.parameterName, 'TimeZone');
  assert.equal(ps.parameterValue, 'Europe/Zürich');
  const key = await one(bw.backendKeyData(12345, Buffer.from([0, 0, 0x30, 0x39])));
  assert.equal(key.processID, 12345);
  assert.equal(key.secretKey, 0x3039);
  for (const s of ['I', 'T', 'E'] as const) {
    assert.equal((await one(bw.readyForQuery(s))).status, s);
    assert.equal(bw.readyForQuery(s), bw.readyForQuery(s));
  }
  assert.deepEqual(bw.SSL_NO, Buffer.from('N'));
});

test('errorResponse and noticeResponse carry S, V, C, M and the optional fields', async () => {
  const fields = { severity: 'FATAL', code: '28P01', message: 'password authentication failed for user "x"', detail: 'd', hint: 'h', position: 17, where: 'w', routine: 'r' } as const;
  const e = await one(bw.errorResponse(fields));
  assert.equal(e.name, 'error');
  assert.equal(e.severity, 'FATAL');
  assert.equal(e.code, '28P01');
  assert.equal(e.message, fields.message);
  assert.equal(e.detail, 'd');
  assert.equal(e.hint, 'h');
  assert.equal(e.position, '17');
  assert.equal(e.where, 'w');
  assert.equal(e.routine, 'r');
  const raw = bw.errorResponse(fields);
  assert.ok(raw.includes(Buffer.from('VFATAL\0')), 'non-localized severity V is written too');
  const n = await one(bw.noticeResponse({ severity: 'WARNING', code: '01000', message: 'careful\0 nul' }));
  assert.equal(n.name, 'notice');
  assert.equal(n.message, 'careful nul', 'a NUL in a field is dropped, not sent');
  assert.equal(n.detail, undefined);
});

test('query result messages', async () => {
  const rd = await one(bw.rowDescription([{ name: 'id', typeOid: 20, tableOid: 16384, columnAttr: 1, typeSize: 8 }, { name: 'naïve', typeOid: 25, format: 1, typeMod: 7 }]));
  assert.equal(rd.name, 'rowDescription');
  assert.equal(rd.fieldCount, 2);
  assert.deepEqual(
    rd.fields.map((f: Msg) => [f.name, f.tableID, f.columnID, f.dataTypeID, f.dataTypeSize, f.dataTypeModifier, f.format]),
    [
      ['id', 16384, 1, 20, 8, -1, 'text'],
      ['naïve', 0, 0, 25, -1, 7, 'binary'],
    ],
  );
  const dr = await one(bw.dataRow(['1', null, Buffer.from('bin'), 'é', '']));
  assert.equal(dr.name, 'dataRow');
  assert.deepEqual(dr.fields, ['1', null, 'bin', 'é', '']);
  const cc = await one(bw.commandComplete('INSERT 0 5'));
  assert.equal(cc.name, 'commandComplete');
  assert.equal(cc.text, 'INSERT 0 5');
  assert.equal((await one(bw.emptyQueryResponse())).name, 'emptyQuery');
});

test('extended query messages', async () => {
  const names = (await pgParse(bw.parseComplete(), bw.bindComplete(), bw.closeComplete(), bw.noData(), bw.portalSuspended())).map((m) => m.name);
  assert.deepEqual(names, ['parseComplete', 'bindComplete', 'closeComplete', 'noData', 'portalSuspended']);
  const pd = await one(bw.parameterDescription([23, 25, 16384]));
  assert.equal(pd.name, 'parameterDescription');
  assert.deepEqual(pd.dataTypeIDs, [23, 25, 16384]);
  // OIDs are unsigned: pg-protocol reads them signed, so the top of the range is checked with the scanner
  const s = new BackendScanner();
  s.push(bw.parameterDescription([4294967295]));
  const m = s.next()!;
  assert.deepEqual(parseParameterDescription(s.buffer, m.start, m.end), [4294967295]);
});

test('COPY messages', async () => {
  const ci = await one(bw.copyInResponse(1, [1, 1, 1]));
  assert.equal(ci.name, 'copyInResponse');
  assert.equal(ci.binary, true);
  assert.deepEqual(ci.columnTypes, [1, 1, 1]);
  const co = await one(bw.copyOutResponse(0, [0, 0]));
  assert.equal(co.name, 'copyOutResponse');
  assert.equal(co.binary, false);
  assert.equal(co.columnTypes.length, 2);
  const cd = await one(bw.copyData(Buffer.from('1\tx\n')));
  assert.equal(cd.name, 'copyData');
  assert.deepEqual(cd.chunk, Buffer.from('1\tx\n'));
  assert.equal((await one(bw.copyDone())).name, 'copyDone');
});

test('notificationResponse parses; negotiateProtocolVersion carries the whole version number', async () => {
  const n = await one(bw.notificationResponse(99, 'chan', 'payload'));
  assert.equal(n.name, 'notification');
  assert.equal(n.processId, 99);
  assert.equal(n.channel, 'chan');
  assert.equal(n.payload, 'payload');
  // pg-protocol has no parser for 'v': read it back with the scanner
  const s = new BackendScanner();
  s.push(bw.negotiateProtocolVersion(0, ['_pq_.foo', '_pq_.bar']));
  const m = s.next()!;
  assert.equal(m.code, 0x76);
  assert.deepEqual(parseNegotiateProtocolVersion(s.buffer, m.start, m.end), { newestVersion: 196608, unsupportedOptions: ['_pq_.foo', '_pq_.bar'] });
});

test('a whole login sequence parses as one stream', async () => {
  const msgs = await pgParse(bw.authenticationOk(), bw.parameterStatus('server_version', '15.18'), bw.backendKeyData(1, Buffer.alloc(4)), bw.readyForQuery('I'));
  assert.deepEqual(msgs.map((m) => m.name), ['authenticationOk', 'parameterStatus', 'backendKeyData', 'readyForQuery']);
});
