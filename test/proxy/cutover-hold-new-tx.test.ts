// Which transactions a cutover waits for (waitInFlight) and which statements it holds:
// 1. a client whose *previous* transaction touched the held range: its next transaction has touched
//    nothing, so its first statement waits for the release like anyone's, and the cutover does not
//    wait for it (the last transaction's keys used to count: the statement slipped past the hold
//    onto the source, and in bench/mover a following write hit the fence: PT001 at the client);
// 2. a transaction whose first statement is still in flight when the hold starts (its BEGIN not yet
//    answered by the server) is waited for (it was not: it read the range on the source, and its
//    next statement, a write, hit the fence: PT001 at the client, also seen in bench/mover).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HASH_END } from '../../config/types.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let keyspaceId: number;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 1 });
  const app = await cluster.client();
  await app.query('CREATE TABLE held_next (id bigint PRIMARY KEY, n int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE held_next BY (id) PARTITIONS 2');
  await app.query('INSERT INTO held_next (id, n) VALUES (1, 0), (2, 0)');
  keyspaceId = (await cluster.proxy.catalog.loadRoutingTable()).tables.find((t) => t.name === 'held_next')!.keyspaceId!;
});
after(async () => {
  await cluster?.stop();
});

function track<T>(p: Promise<T>): { done: boolean; promise: Promise<T> } {
  const t = { done: false, promise: p };
  p.then(() => (t.done = true), () => (t.done = true));
  return t;
}

test('the first statement of a new transaction is held even though the previous transaction touched the range; waitInFlight does not wait for it', async () => {
  const range = { jobId: 1_000_101, keyspaceId, lo: -(2n ** 63n), hi: HASH_END };
  const c = await cluster.client();
  await c.query('BEGIN');
  await c.query('UPDATE held_next SET n = n + 1 WHERE id = $1', [1]);
  await c.query('COMMIT');
  await c.query('BEGIN'); // held by the proxy until the first statement names a shard
  cluster.proxy.server.holdRange(range);
  let write: ReturnType<typeof track> | null = null;
  try {
    write = track(c.query('UPDATE held_next SET n = n + 1 WHERE id = $1', [2]));
    await cluster.proxy.server.waitInFlight(range, 5000); // rejects if the new transaction counted as in flight
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(write.done, false, 'the new transaction waits for the release');
  } finally {
    cluster.proxy.server.releaseRange(range);
  }
  await write!.promise;
  await c.query('COMMIT');
  const { rows } = await c.query('SELECT id, n FROM held_next ORDER BY id');
  assert.deepEqual(rows.map((r) => [Number(r.id), r.n]), [[1, 1], [2, 1]]);
});

test('a transaction whose first statement is in flight when the hold starts is waited for', async () => {
  const range = { jobId: 1_000_102, keyspaceId, lo: -(2n ** 63n), hi: HASH_END };
  const c = await cluster.client();
  await c.query('SELECT n FROM held_next WHERE id = $1', [1]); // the shard's one pooled server is open
  const owner = cluster.proxy.server.routing().shardForKey(cluster.proxy.server.routing().tableInfo('held_next')!, 1);
  const direct = await cluster.shard(owner);
  const mine = (await direct.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  const pids = (await direct.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> $1", [mine])).rows.map((r) => r.pid as number);
  assert.ok(pids.length > 0, 'the proxy has a server on the shard');
  // Stop the proxy's server process: the BEGIN and the first statement go out and stay unanswered.
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  let stopped = true;
  let inFlight: ReturnType<typeof track> | null = null;
  try {
    await c.query('BEGIN');
    const first = track(c.query('SELECT n FROM held_next WHERE id = $1 FOR UPDATE', [1]));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(first.done, false, 'the first statement is in flight');
    cluster.proxy.server.holdRange(range);
    inFlight = track(cluster.proxy.server.waitInFlight(range, 60000));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inFlight.done, false, 'the cutover waits for the transaction whose first statement is in flight');
    for (const pid of pids) process.kill(pid, 'SIGCONT');
    stopped = false;
    await first.promise;
    await c.query('UPDATE held_next SET n = n + 1 WHERE id = $1', [1]); // its next statement is not held
    assert.equal(inFlight.done, false, 'the transaction is still open');
    await c.query('COMMIT');
    await inFlight.promise;
  } finally {
    if (stopped) for (const pid of pids) process.kill(pid, 'SIGCONT');
    cluster.proxy.server.releaseRange(range);
  }
  assert.equal((await c.query('SELECT n FROM held_next WHERE id = 1')).rows[0].n, 2);
});
