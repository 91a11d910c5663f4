// Cutover holds against transactions already open on the range (found by live-move-kill.test.ts):
// 1. a transaction that touched the range before the hold can run its next statements (the cutover
//    waits for it; holding it too was a deadlock until the budget ran out);
// 2. a cutover aborted while such a transaction stays open (longer than lock_timeout) releases the
//    held traffic instead of leaving it held until that transaction ends;
// 3. the fence lets a transaction finish that captured a change of the job before the fence (it
//    writes two tables in the other order than the switch), and refuses every other write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hashKey } from '../../config/hash.js';
import { HASH_END } from '../../config/types.js';
import { installCapture, MOVER_SCHEMA, setTriggerMode, type CaptureSpec } from '../../mover/capture.js';
import { Mover } from '../../mover/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let keyspaceId: number;

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  const app = await cluster.client();
  await app.query('CREATE TABLE held (id bigint PRIMARY KEY, n int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE held BY (id) PARTITIONS 2');
  await app.query(`INSERT INTO held (id, n) VALUES ${Array.from({ length: 200 }, (_, i) => `(${i + 1}, 0)`).join(', ')}`);
  keyspaceId = (await cluster.proxy.catalog.loadRoutingTable()).tables.find((t) => t.name === 'held')!.keyspaceId!;
});
after(async () => {
  await cluster?.stop();
});

/** Settles a promise into a flag the test can look at without waiting for it. */
function track<T>(p: Promise<T>): { done: boolean; promise: Promise<T> } {
  const t = { done: false, promise: p };
  p.then(() => (t.done = true), () => (t.done = true));
  return t;
}

test('a transaction open on a held range runs its next statement; waitInFlight ends when it commits; new transactions stay held', async () => {
  const range = { jobId: 1_000_001, keyspaceId, lo: -(2n ** 63n), hi: HASH_END };
  const open = await cluster.client({ query_timeout: 30000 }); // a held statement fails the test instead of hanging it
  const fresh = await cluster.client();
  await open.query('BEGIN');
  await open.query('UPDATE held SET n = n + 1 WHERE id = $1', [1]);
  cluster.proxy.server.holdRange(range);
  let freshRun: ReturnType<typeof track> | null = null;
  try {
    freshRun = track(fresh.query('UPDATE held SET n = n + 1 WHERE id = $1', [2]));
    const inFlight = track(cluster.proxy.server.waitInFlight(range, 60000));
    // Extended protocol, then simple protocol: both reach the server although the range is held.
    await open.query('UPDATE held SET n = n + 1 WHERE id = $1', [1]);
    await open.query('UPDATE held SET n = n + 1 WHERE id = 1');
    assert.equal(inFlight.done, false, 'the open transaction is still in flight');
    await open.query('COMMIT');
    await inFlight.promise; // rejects after 60 s if the transaction were still counted
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(freshRun.done, false, 'a transaction that starts during the hold still waits for the release');
  } finally {
    cluster.proxy.server.releaseRange(range);
  }
  await freshRun!.promise;
  const { rows } = await open.query('SELECT id, n FROM held WHERE id IN (1, 2) ORDER BY id');
  assert.deepEqual(rows.map((r) => [Number(r.id), r.n]), [[1, 3], [2, 1]]);
});

test('a cutover that times out on a long transaction releases held traffic while that transaction stays open; the job then finishes', async () => {
  const routing = await cluster.proxy.catalog.loadRoutingTable();
  const part = routing.partitions.find((p) => p.keyspaceId === keyspaceId && p.shardId === 0)!;
  const inRange: number[] = [];
  for (let k = 3; k <= 200 && inRange.length < 2; k++) { // 1 and 2 were written by the first test
    const h = hashKey('int8', BigInt(k));
    if (h >= part.lo && h < part.hi) inRange.push(k);
  }
  const [blockKey, otherKey] = inRange as [number, number];
  const blocker = await cluster.client();
  const other = await cluster.client();
  let blockerOpen = false;
  let heldWrite: ReturnType<typeof track> | null = null;
  // The proxy's own routing control (holds, in-flight waits), with a hook that opens a long
  // transaction on the range just before the cutover and, at the first hold, sends a write to the range.
  const mover = new Mover({
    catalog: cluster.proxy.catalog, routing: cluster.proxy.mover.routing,
    settings: { graceMs: 0, lockTimeoutMs: 1000, retryDelayMs: 100, transientRetryMs: 120000, cutoverAttempts: 50 },
    hooks: {
      async onStep(_job, step) {
        if (step === 'state:cutover' && !blockerOpen) {
          blockerOpen = true;
          await blocker.query('BEGIN');
          await blocker.query('UPDATE held SET n = n + 10 WHERE id = $1', [blockKey]);
        }
        if (step === 'cutover:holdTraffic' && heldWrite === null) heldWrite = track(other.query('UPDATE held SET n = n + 100 WHERE id = $1', [otherKey]));
      },
    },
  });
  try {
    const job = await mover.startMove(part.id, 1, { cutoverBudgetMs: 300 });
    const run = track(mover.runJob(job.id));
    // The held write completes although the long transaction is still open: the aborted cutover released it.
    const deadline = Date.now() + 60000;
    while (!(heldWrite as ReturnType<typeof track> | null)?.done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok((heldWrite as ReturnType<typeof track> | null)?.done, 'the write held by the cutover ran while the long transaction was still open');
    await heldWrite!.promise;
    assert.equal(run.done, false, 'the job is still waiting for the long transaction');
    await blocker.query('COMMIT');
    const done = await run.promise;
    assert.equal(done.state, 'done', `job ended ${done.state}: ${done.reason ?? done.error ?? ''}`);
    const { rows } = await other.query('SELECT id, n FROM held WHERE id = ANY($1::int8[]) ORDER BY id', [[blockKey, otherKey]]);
    assert.deepEqual(rows.map((r) => [Number(r.id), r.n]).sort((a, b) => a[0]! - b[0]!), [[blockKey, 10], [otherKey, 100]].sort((a, b) => a[0]! - b[0]!));
    const src = await cluster.shard(0);
    const left = await src.query('SELECT count(*)::int AS n FROM held WHERE id = ANY($1::int8[])', [[blockKey, otherKey]]);
    assert.equal(left.rows[0].n, 0, 'the moved rows are gone from the source');
  } finally {
    if (blockerOpen) await blocker.query('ROLLBACK').catch(() => {});
    await mover.close();
  }
});

test('the fence passes a transaction that captured a change of the job before it (two tables, other order) and refuses the rest', async () => {
  const shard = await cluster.shard(0);
  const other = await cluster.shard(0);
  const mover = await cluster.shard(0);
  await shard.query('CREATE TABLE fence_a (id bigint PRIMARY KEY, v int NOT NULL); CREATE TABLE fence_b (id bigint PRIMARY KEY, v int NOT NULL)');
  const table = (name: string) => ({ name, keyColumn: 'id', keyType: 'int8' as const, columns: ['id', 'v'], keyIndex: 0 });
  const spec: CaptureSpec = { jobId: 4242, lo: -(2n ** 63n), hi: HASH_END, tables: [table('fence_a'), table('fence_b')] };
  await installCapture(mover, spec);
  // A transaction writes fence_b first; then fence_a is switched to fence (fence_b's switch would wait for it).
  await shard.query('BEGIN');
  await shard.query('INSERT INTO fence_b VALUES (1, 1)');
  await setTriggerMode(mover, { ...spec, tables: [spec.tables[0]!] }, 'fence', 5000);
  await shard.query('INSERT INTO fence_a VALUES (1, 1)'); // passes: this transaction captured before the fence
  await assert.rejects(other.query('INSERT INTO fence_a VALUES (2, 1)'), (e: Error & { code?: string }) => e.code === 'PT001', 'a transaction that captured nothing is fenced');
  await shard.query('COMMIT');
  await setTriggerMode(mover, spec, 'fence', 5000);
  await assert.rejects(shard.query('UPDATE fence_b SET v = 2 WHERE id = 1'), (e: Error & { code?: string }) => e.code === 'PT001', 'after the fence, every write to the range is refused');
  const { rows } = await mover.query(`SELECT tbl, key FROM ${MOVER_SCHEMA}.changelog WHERE job_id = 4242 ORDER BY seq`);
  assert.deepEqual(rows, [{ tbl: 'fence_b', key: '1' }, { tbl: 'fence_a', key: '1' }], 'both writes of the transaction are in the changelog for the final drain');
});
