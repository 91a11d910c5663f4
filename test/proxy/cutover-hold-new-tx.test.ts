// A cutover hold and a client whose *previous* transaction touched the held range: its next
// transaction has touched nothing, so its first statement waits for the release like anyone's, and
// the cutover does not wait for it. (The last transaction's keys used to count until the new one's
// first statement: the statement slipped past the hold onto the source, and in bench/mover a
// following write hit the fence after the switch: SQLSTATE PT001 at the client.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HASH_END } from '../../config/types.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let keyspaceId: number;

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
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
