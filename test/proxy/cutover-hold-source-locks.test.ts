// A cutover's hold and the fence's LOCK TABLE on the source shard (S) must not wait for each other:
// 1. a transaction that wrote a row of the key space on S (another partition, not the moving one)
//    before the hold, and then writes the moving range, is not held: the cutover waits for it to
//    commit, then fences. Before, its second write waited for the hold while it kept its row lock
//    on the table, the fence's LOCK TABLE waited for that lock, and the attempt ran out of
//    lock_timeout (pgbench TPC-B: account on S's other partition, then branch 1 on the held range;
//    with -c 4 nearly every attempt);
// 2. a transaction that writes a row of the key space on S after the hold is placed (another
//    partition) is held until the release, so it takes no lock the fence would wait for; an
//    autocommit write there is not held;
// 3. case 1 on a proxy that does not run the mover: it acks the hold (cluster-holds) only after
//    that transaction committed;
// 4. an extended batch with several Binds before one Sync is held as a whole (every Bind checked),
//    and re-run after the release without losing or duplicating the statement it prepares.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import { Mover, type Job } from '../../mover/index.js';
import type { Partition } from '../../config/types.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { loginAndRun, messageTypes } from '../helpers/raw-client.js';

let cluster: TestCluster;
let keyspaceId: number;
let other: RunningProxy | null = null;
let otherClient: pg.Client | null = null;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 4 });
  const app = await cluster.client();
  await app.query('CREATE TABLE acct (id bigint PRIMARY KEY, n int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE acct BY (id) PARTITIONS 4');
  const values = Array.from({ length: 400 }, (_, i) => `(${i + 1}, 0)`).join(', ');
  await app.query(`INSERT INTO acct (id, n) VALUES ${values}`);
  keyspaceId = (await cluster.proxy.catalog.loadRoutingTable()).tables.find((t) => t.name === 'acct')!.keyspaceId!;
});
after(async () => {
  await otherClient?.end().catch(() => {});
  await other?.stop().catch(() => {});
  await cluster?.stop();
});

function partitions(): Partition[] {
  return cluster.proxy.server.routingTable().partitions.filter((p) => p.keyspaceId === keyspaceId);
}

/** Keys (1..400) of partition `p`, in order. */
function keysOf(p: Partition): number[] {
  const index = cluster.proxy.server.routing();
  const info = index.tableInfo('acct')!;
  return Array.from({ length: 400 }, (_, i) => i + 1).filter((k) => index.partitionForKey(info, k).id === p.id);
}

/** A partition to move (on shard `source`) and another partition on the same shard. */
function pick(source: number): { moving: Partition; other: Partition } {
  const on = partitions().filter((p) => p.shardId === source);
  assert.ok(on.length >= 2, `shard ${source} has two partitions of acct`);
  return { moving: on[0]!, other: on[1]! };
}

function track<T>(p: Promise<T>): { done: boolean; promise: Promise<T> } {
  const t = { done: false, promise: p };
  p.then(() => (t.done = true), () => (t.done = true));
  return t;
}

async function n(shard: pg.Client, id: number): Promise<number | null> {
  const { rows } = await shard.query('SELECT n FROM acct WHERE id = $1', [id]);
  return rows.length === 0 ? null : rows[0].n;
}

function moverWith(onStep: (step: string) => Promise<void> | void): Mover {
  return new Mover({
    catalog: cluster.proxy.catalog, routing: cluster.proxy.mover.routing,
    settings: { graceMs: 100, chunkRows: 200, cutoverBudgetMs: 1500, cutoverAttempts: 3, retryDelayMs: 100, latencyFloorMs: 50, maxDelayMs: 100 },
    hooks: { onStep: (_id, step) => onStep(step) },
  });
}

async function runMove(mover: Mover, p: Partition, to: number): Promise<{ done: Job; attempts: number; events: string[] }> {
  const job = await mover.startMove(p.id, to);
  const done = await mover.runJob(job.id);
  const detail = await mover.jobDetail(job.id);
  return { done, attempts: detail.cutoverAttempts, events: detail.events.map((e) => `${e.fromState ?? '·'} → ${e.toState}: ${e.detail ?? ''}`).slice(-8) };
}

async function writeBeforeHoldThenRange(c: pg.Client, source: number, target: number, via: RunningProxy = cluster.proxy): Promise<void> {
  const { moving, other } = pick(source);
  const a = keysOf(other)[0]!;
  const b = keysOf(moving)[0]!;
  const s = await cluster.shard(source);
  const t = await cluster.shard(target);
  const [na, nb] = [await n(s, a), await n(s, b)];
  let tx = null as ReturnType<typeof track> | null;
  let begun = false;
  const mover = moverWith(async (step) => {
    if (step === 'state:cutover' && !begun) {
      // Capture is in place (it locks the table too); the cutover's hold is not up yet.
      begun = true;
      await c.query('BEGIN');
      await c.query('UPDATE acct SET n = n + 1 WHERE id = $1', [a]); // a lock on acct, on the source
    }
    if (step === 'cutover:holdTraffic' && tx === null) {
      // The hold is up (on another proxy once its notification arrived): the transaction's next
      // statement is on the moving range, then it commits.
      for (let i = 0; i < 500 && !via.server.holds.active; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(via.server.holds.active, 'the client\'s proxy holds the range');
      tx = track((async () => {
        await c.query('UPDATE acct SET n = n + 10 WHERE id = $1', [b]);
        await c.query('COMMIT');
      })());
    }
  });
  try {
    const r = await runMove(mover, moving, target);
    assert.equal(r.done.state, 'done', `job: ${r.done.reason ?? r.done.error ?? ''} (events: ${r.events.join(' | ')})`);
    assert.equal(r.attempts, 1, `one cutover attempt (events: ${r.events.join(' | ')})`);
    assert.ok(tx, 'the hook ran');
    await tx!.promise;
  } finally {
    await mover.close();
  }
  assert.equal(await n(s, a), na! + 1, 'the other partition\'s row, updated, on the source');
  assert.equal(await n(t, a), null);
  assert.equal(await n(t, b), nb! + 10, 'the moved row, updated, on the target');
  assert.equal(await n(s, b), null, 'and no longer on the source');
  assert.equal((await c.query('SELECT n FROM acct WHERE id = $1', [b])).rows[0].n, nb! + 10);
}

test('a transaction that wrote the source shard\'s other partition before the hold writes the held range: the cutover waits for it and succeeds at once', async () => {
  await writeBeforeHoldThenRange(await cluster.client(), 0, 1);
});

test('a transaction that writes the source shard\'s other partition during the hold waits for the release; an autocommit write there does not', async () => {
  // Move back the other way: source is shard 1 now (it has three partitions).
  const source = 1;
  const target = 0;
  const { moving, other } = pick(source);
  const [a, a2] = keysOf(other);
  const d = await cluster.client();
  const auto = await cluster.client();
  let write = null as ReturnType<typeof track> | null;
  let heldAtFence = null as boolean | null;
  let committed: Promise<unknown> | null = null;
  let autoMs = -1;
  const mover = moverWith(async (step) => {
    if (step === 'cutover:holdTraffic' && write === null) {
      await d.query('BEGIN');
      write = track(d.query('UPDATE acct SET n = n + 100 WHERE id = $1', [a!]));
      // Committed as soon as it ran (the job's cleanup locks the table on the source too).
      committed = write.promise.then(() => d.query('COMMIT'));
      committed.catch(() => {});
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        auto.query('UPDATE acct SET n = n + 1000 WHERE id = $1', [a2!]),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('the autocommit write was held')), 3000); }),
      ]).finally(() => clearTimeout(timer));
      autoMs = Date.now() - t0;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (step === 'cutover:fenceSource' && heldAtFence === null) heldAtFence = write !== null && !write.done;
  });
  try {
    const r = await runMove(mover, moving, target);
    assert.equal(r.done.state, 'done', `job: ${r.done.reason ?? r.done.error ?? ''} (events: ${r.events.join(' | ')})`);
    assert.equal(r.attempts, 1, `one cutover attempt (events: ${r.events.join(' | ')})`);
    assert.equal(heldAtFence, true, 'the transaction\'s write was still held when the fence went up');
    assert.ok(autoMs >= 0, 'the autocommit write ran during the hold');
    await committed;
  } finally {
    await mover.close();
  }
  const s = await cluster.shard(source);
  assert.equal(await n(s, a!), 100, 'the held write ran after the release, on its owner');
  assert.equal(await n(s, a2!), 1000);
});

test('the same through a proxy that does not run the mover: it acks the hold once that transaction committed', async () => {
  other = await runProxy({ ...cluster.config, listen: { host: '127.0.0.1', port: await freePort() } }, pino({ level: 'silent' }), { runJobs: false });
  otherClient = new pg.Client({ host: '127.0.0.1', port: other.port, user: 'app', password: 'app-password', database: 'app', query_timeout: 60000 });
  otherClient.on('error', () => {});
  await otherClient.connect();
  // Shard 0 has two partitions again (the first test moved one away, the second one back).
  await writeBeforeHoldThenRange(otherClient, 0, 1, other);
});

test('an extended batch of several statements (pgjdbc executeBatch) on the held range waits for the release as a whole; its named statement survives the wait', async () => {
  // Shard 1 has three partitions after the tests above.
  const { moving } = pick(1);
  const [b1, b2] = keysOf(moving);
  const s = await cluster.shard(1);
  const t = await cluster.shard(0);
  const [n1, n2] = [await n(s, b1!), await n(s, b2!)];
  const sock = net.connect(cluster.proxy.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  await loginAndRun(sock, [serialize.query('SELECT 1')], 'Z');
  let batch = null as ReturnType<typeof track<Buffer>> | null;
  let heldAfterFence = null as boolean | null;
  const mover = moverWith(async (step) => {
    // The fence is up: before this change the batch ran on the source there and failed (PT001).
    if (step === 'cutover:fenceSource' && batch === null) {
      batch = track(loginAndRun(sock, [
        serialize.parse({ name: 'upd', text: 'UPDATE acct SET n = n + $2 WHERE id = $1' }),
        serialize.bind({ statement: 'upd', values: [String(b1), '5'] }), serialize.execute({}),
        serialize.bind({ statement: 'upd', values: [String(b2), '5'] }), serialize.execute({}),
        serialize.sync(),
      ], 'Z'));
      await new Promise((r) => setTimeout(r, 200));
      heldAfterFence = !batch.done;
    }
  });
  try {
    const r = await runMove(mover, moving, 0);
    assert.equal(r.done.state, 'done', `job: ${r.done.reason ?? r.done.error ?? ''} (events: ${r.events.join(' | ')})`);
  } finally {
    await mover.close();
  }
  assert.equal(heldAfterFence, true, 'the batch waited for the release');
  const reply = await batch!.promise;
  assert.equal(messageTypes(reply), '12C2CZ', `ParseComplete, two Binds and UPDATEs, ReadyForQuery, no error (${reply.toString('latin1').replace(/[^ -~]/g, '.')})`);
  assert.equal(await n(t, b1!), n1! + 5, 'both rows updated, on the new owner');
  assert.equal(await n(t, b2!), n2! + 5);
  const again = await loginAndRun(sock, [serialize.bind({ statement: 'upd', values: [String(b1), '1'] }), serialize.execute({}), serialize.sync()], 'Z');
  assert.equal(messageTypes(again), '2CZ', 'the named statement is there once (not lost, not a duplicate)');
  assert.equal(await n(t, b1!), n1! + 6);
  sock.destroy();
});
