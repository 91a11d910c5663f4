// The lane logic of proxy/pool/pipeline.ts on its own: replies are cut at ReadyForQuery and go to
// the statement they answer; a cancelled statement's reply is dropped; when a cancel signal lands
// on the statement behind its target, that one is run again and nothing of its reply leaks; a lane
// whose signal never showed where it landed is discarded, not pooled. (The same paths run against
// real servers in test/proxy/pipeline.test.ts; here the server's bytes are written by hand so the
// race a real server seldom shows can be forced.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShardPipeline, type PipelinedUnit } from '../../../proxy/pool/pipeline.js';
import type { PooledServer } from '../../../proxy/pool/pooled-server.js';
import type { ShardPool } from '../../../proxy/pool/shard-pool.js';
import * as bw from '../../../proxy/protocol/backend-writer.js';
import { errorSqlstate, isFatalError } from '../../../proxy/protocol/backend-scanner.js';

class Unit implements PipelinedUnit {
  readonly got: Buffer[] = [];
  done = 0;
  lost = 0;
  retried = 0;
  pipelineData(bytes: Buffer): void { this.got.push(Buffer.from(bytes)); }
  pipelineDone(): void { this.done++; }
  pipelineLost(): void { this.lost++; }
  pipelineRetry(): void { this.retried++; }
  text(): string { return Buffer.concat(this.got).toString('latin1'); }
}

function harness() {
  const written: Buffer[] = [];
  let cancels = 0;
  const server = {
    queries: 0, unnamedKey: null, sink: null, settings: new Map(),
    socket: { cork() {}, uncork() {} },
    write(b: Buffer) { written.push(b); return true; },
    conn: { cancel: async () => { cancels++; } },
  } as unknown as PooledServer;
  const released: PooledServer[] = [];
  const discarded: PooledServer[] = [];
  let idle: PooledServer | null = server;
  const pool = {
    tryAcquireMatching: () => { const s = idle; idle = null; return s; },
    release: (s: PooledServer) => { released.push(s); idle = s; },
    discard: (s: PooledServer) => { discarded.push(s); },
  } as unknown as ShardPool;
  const lanes = new ShardPipeline(pool, { maxDepth: 8, stuckMs: 10 });
  return { lanes, server, written, released, discarded, cancels: () => cancels };
}

/** Two statements queued on the harness's lane, in this order. */
function twoQueued(h: ReturnType<typeof harness>): [Unit, Unit] {
  const a = new Unit(), b = new Unit();
  assert.ok(h.lanes.submit(a, bytes('A'), 't', 0, () => true));
  assert.ok(h.lanes.submit(b, bytes('B'), 't', 0, () => true));
  return [a, b];
}

const reply = (v: string) => Buffer.concat([bw.rowDescription([{ name: 'v', typeOid: 25 }]), bw.dataRow([v]), bw.commandComplete('SELECT 1'), bw.readyForQuery('I')]);
const canceled = (when: 'user' | 'other') => Buffer.concat([
  bw.rowDescription([{ name: 'v', typeOid: 25 }]),
  bw.errorResponse({ severity: 'ERROR', code: '57014', message: when === 'user' ? 'canceling statement due to user request' : 'x' }),
  bw.readyForQuery('I'),
]);
const bytes = (s: string) => () => ({ bytes: Buffer.from(s), swallow: 0 });

test('replies split at ReadyForQuery reach their own statements, even cut mid-message', () => {
  const h = harness();
  const a = new Unit(), b = new Unit();
  assert.ok(h.lanes.submit(a, bytes('A'), 't', 0, () => true));
  assert.ok(h.lanes.submit(b, bytes('B'), 't', 0, () => true));
  const stream = Buffer.concat([reply('a'), reply('b')]);
  // Cut the stream inside the first DataRow and inside the second RowDescription.
  for (const [from, to] of [[0, 30], [30, 70], [70, stream.length]] as const) h.lanes.onServerData(h.server, stream.subarray(from, to));
  assert.equal(a.done, 1);
  assert.equal(b.done, 1);
  assert.ok(a.text().includes('\u0000\u0000\u0000\u0001a') && !a.text().includes('\u0001b'), 'a got only its row');
  assert.ok(b.text().includes('\u0000\u0000\u0000\u0001b') && !b.text().includes('\u0001a'), 'b got only its row');
  assert.deepEqual(h.released, [h.server], 'the drained lane goes back to the pool');
});

test('a lane carries reads of one table: another table\'s read never queues behind them', () => {
  const h = harness();
  const a = new Unit(), b = new Unit(), c = new Unit();
  assert.ok(h.lanes.submit(a, bytes('A'), 't', 0, () => true));
  assert.equal(h.lanes.submit(b, bytes('B'), 'u', 0, () => true), false, 'no lane for u (the pool has no other server): b links a server of its own');
  assert.ok(h.lanes.submit(c, bytes('C'), 't', 0, () => true), 'the same table shares the lane');
  h.lanes.onServerData(h.server, Buffer.concat([reply('a'), reply('c')]));
  assert.ok(h.lanes.submit(b, bytes('B'), 'u', 1, () => true), 'an empty lane takes any table');
});

test('a statement that changes a reported setting (set_config in a SELECT) takes its lane out of service: discarded when done', () => {
  const h = harness();
  const a = new Unit(), b = new Unit(), c = new Unit();
  h.lanes.submit(a, bytes('A'), 't', 0, () => true);
  h.lanes.submit(b, bytes('B'), 't', 0, () => true);
  h.lanes.onServerData(h.server, Buffer.concat([bw.parameterStatus('TimeZone', 'Asia/Tokyo'), reply('a')]));
  assert.ok(a.text().includes('TimeZone'), 'its client hears the change');
  assert.equal(h.lanes.submit(c, bytes('C'), 't', 1, () => true), false, 'the lane takes nothing new');
  h.lanes.onServerData(h.server, reply('b'));
  assert.equal(b.done, 1);
  assert.deepEqual(h.discarded, [h.server], 'the server is not pooled with a setting nobody tracks');
  assert.deepEqual(h.released, []);
});

test('a named statement parsed on the lane server first: its ParseComplete (and an eviction\'s CloseComplete) never reach the client', () => {
  const h = harness();
  const a = new Unit(), b = new Unit();
  const injected = () => ({ bytes: Buffer.from('CPBES'), swallow: 2 });
  h.lanes.submit(a, injected, 't', 0, () => true);
  h.lanes.submit(b, bytes('B'), 't', 0, () => true);
  const bindReply = (v: string) => Buffer.concat([bw.bindComplete(), bw.rowDescription([{ name: 'v', typeOid: 25 }]), bw.dataRow([v]), bw.commandComplete('SELECT 1'), bw.readyForQuery('I')]);
  h.lanes.onServerData(h.server, Buffer.concat([bw.closeComplete(), bw.parseComplete(), bindReply('a'), bindReply('b')]));
  assert.equal(a.got[0]![0], '2'.charCodeAt(0), 'a\'s reply starts at its BindComplete');
  assert.ok(!a.text().startsWith('3') && !a.text().includes('1\u0000\u0000\u0000\u0004'), 'no CloseComplete or ParseComplete');
  assert.equal(b.got[0]![0], '2'.charCodeAt(0), 'b\'s reply is untouched');
  assert.deepEqual(h.released, [h.server]);
});

test('an injected Parse that fails: the error is the statement\'s, and the server is not reused', () => {
  const h = harness();
  const a = new Unit();
  h.lanes.submit(a, () => ({ bytes: Buffer.from('PBES'), swallow: 1 }), 't', 0, () => true);
  h.lanes.onServerData(h.server, Buffer.concat([bw.errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "kv" does not exist' }), bw.readyForQuery('I')]));
  assert.equal(a.done, 1);
  assert.ok(a.text().includes('42P01'), 'the client hears the error');
  assert.deepEqual(h.discarded, [h.server], 'its prepared statements are not what the pool believes');
});

test('a young cancelled statement is not signalled: its reply is dropped, the next one is untouched', () => {
  const h = harness();
  const [a, b] = twoQueued(h);
  assert.ok(h.lanes.cancel(a, 5), 'found in its lane');
  assert.equal(h.cancels(), 0, 'a head younger than stuckMs is left to finish');
  h.lanes.onServerData(h.server, Buffer.concat([reply('a'), reply('b')]));
  assert.equal(a.got.length + a.done, 0, 'nothing of a\'s reply reaches its client');
  assert.equal(b.done, 1);
  assert.deepEqual(h.released, [h.server]);
  assert.equal(h.lanes.cancel(a, 6), false, 'a statement no longer in a lane');
});

test('a signal that lands on the statement behind its target: that one runs again, nothing of it leaks', () => {
  const h = harness();
  const a = new Unit(), b = new Unit(), c = new Unit();
  h.lanes.submit(a, bytes('A'), 't', 0, () => true);
  h.lanes.submit(b, bytes('B'), 't', 0, () => true);
  h.lanes.submit(c, bytes('C'), 't', 0, () => true);
  assert.ok(h.lanes.cancel(a, 50));
  assert.equal(h.cancels(), 1, 'a stuck head is signalled on the server');
  const d = new Unit();
  assert.ok(h.lanes.submit(d, bytes('D'), 't', 50, () => true) === false, 'a lane with a signal in flight takes nothing new (and the pool has no other server)');
  // a finished just before the signal landed; it hit b instead; c ran normally.
  h.lanes.onServerData(h.server, Buffer.concat([reply('a'), canceled('user'), reply('c')]));
  assert.equal(a.got.length + a.done, 0);
  assert.equal(b.retried, 1, 'b runs again');
  assert.equal(b.got.length + b.done, 0, 'no byte of b\'s cancelled reply reached its client');
  assert.equal(c.done, 1);
  assert.ok(c.text().includes('\u0001c'), 'c\'s held reply was delivered');
  assert.deepEqual(h.released, [h.server], 'the signal landed: the server is clean');
  assert.deepEqual(h.discarded, []);
});

test('a signal that lands on its target is consumed there; one never seen to land discards the server', () => {
  const landed = harness();
  const [a, b] = twoQueued(landed);
  landed.lanes.cancel(a, 50);
  landed.lanes.onServerData(landed.server, Buffer.concat([canceled('user'), reply('b')]));
  assert.equal(b.done, 1);
  assert.equal(b.retried, 0);
  assert.deepEqual(landed.released, [landed.server]);

  const unseen = harness();
  const [x, y] = twoQueued(unseen);
  unseen.lanes.cancel(x, 50);
  unseen.lanes.onServerData(unseen.server, Buffer.concat([reply('x'), reply('y')]));
  assert.equal(y.done, 1, 'y answered normally');
  assert.ok(y.text().includes('\u0001y'));
  assert.deepEqual(unseen.released, [], 'the signal may still land: not pooled');
  assert.deepEqual(unseen.discarded, [unseen.server]);
});

test('a FATAL fails every queued statement except a cancelled one, which was answered already', () => {
  const h = harness();
  const [a, b] = twoQueued(h);
  h.lanes.cancel(b, 1);
  h.lanes.onServerData(h.server, bw.errorResponse({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' }));
  assert.equal(a.lost, 1);
  assert.equal(b.lost, 0);
  assert.deepEqual(h.discarded, [h.server]);
});

test('errorSqlstate and isFatalError read single fields of an ErrorResponse', () => {
  const e = bw.errorResponse({ severity: 'FATAL', code: '57P01', message: 'bye' });
  assert.equal(errorSqlstate(e, 0, e.length), '57P01');
  assert.equal(isFatalError(e, 0, e.length), true);
  const n = bw.errorResponse({ severity: 'ERROR', code: '22012', message: 'division by zero' });
  assert.equal(errorSqlstate(n, 0, n.length), '22012');
  assert.equal(isFatalError(n, 0, n.length), false);
});
