// Cutover holds on a proxy that does not run the mover (issue 6; DESIGN.md "Live redistribution":
// held, not failed, statements on every proxy). Every live proxy holds the moving range and acks
// the hold through the catalog (proxy/cluster/cluster-holds.ts) before the mover fences the source:
// 1. a transaction that read the range before the cutover (the old gap: it wrote after the fence
//    and got PT001) writes it during the hold and commits; the fence waits for its proxy's ack;
// 2. a statement held there runs on the new owner after the switch, in its transaction, which
//    stays intact (it wrote the target shard first) and commits;
// 3. a live proxy that does not ack aborts the cutover (never fenced without its ack); one whose
//    heartbeat lapsed is waited out before an attempt (no attempt burnt), declared dead, and the
//    cutover goes on without it;
// 4. a long transaction on the range there makes attempts abort (unfenced, holds released) until
//    it commits;
// 5. a hold whose mover died is released by the other proxies at its deadline, or at their next
//    routing poll once the mover's proxy is declared dead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import { hashKey } from '../../config/hash.js';
import type { Partition } from '../../config/types.js';
import { Mover, type MoverSettings } from '../../mover/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let other: RunningProxy;
const clients: pg.Client[] = [];

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  const app = await cluster.client();
  const admin = await cluster.admin();
  for (const t of ['nl', 'nl2', 'nl3']) {
    await app.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, n int NOT NULL)`);
    // Each table its own key space: one test's move does not touch the next test's partitions.
    await admin.query(`SHARD TABLE ${t} BY (id) PARTITIONS 2 ALONE`);
    await app.query(`INSERT INTO ${t} (id, n) VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 0)`).join(', ')}`);
  }
  other = await runProxy({ ...cluster.config, listen: { host: '127.0.0.1', port: await freePort() } }, pino({ level: 'silent' }), { runJobs: false });
});
after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await other?.stop().catch(() => {});
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function otherClient(): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: other.port, user: 'app', password: 'app-password', database: 'app', query_timeout: 60000 });
  c.on('error', () => {});
  clients.push(c);
  await c.connect();
  return c;
}

/** The table's partition on `shard`, and a key inside / outside it. */
async function partitionOf(table: string, shard: number): Promise<{ part: Partition; keyIn: number; keyOut: number }> {
  const routing = await cluster.proxy.catalog.loadRoutingTable();
  const ks = routing.tables.find((t) => t.name === table)!.keyspaceId!;
  const part = routing.partitions.find((p) => p.keyspaceId === ks && p.shardId === shard)!;
  const inPart = (k: number) => hashKey('int8', k) >= part.lo && hashKey('int8', k) < part.hi;
  const keys = Array.from({ length: 100 }, (_, i) => i + 1);
  return { part, keyIn: keys.find(inPart)!, keyOut: keys.find((k) => !inPart(k))! };
}

function newMover(settings: Partial<MoverSettings>, onStep: (step: string) => Promise<void> | void): Mover {
  return new Mover({
    catalog: cluster.proxy.catalog, routing: cluster.proxy.mover.routing, settings: { graceMs: 100, ...settings },
    hooks: { onStep: async (_job, step) => onStep(step) },
  });
}

async function eventually(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('a transaction on a non-leader proxy that read the moving range before the cutover writes it during the hold, not failed; the fence waits for it', async () => {
  const { part, keyIn } = await partitionOf('nl', 0);
  const c = await otherClient();
  let outcome: string | null = null;
  let began = false;
  let committedAt = 0;
  let fencedAt = 0;
  let heldOnOther = false;
  let writing: Promise<void> | null = null;
  const mover = newMover({ cutoverBudgetMs: 5000 }, async (step) => {
    if (step === 'state:cutover' && !began) {
      // Read-modify-write: the read takes no lock that the fence's LOCK TABLE waits for.
      began = true;
      await c.query('BEGIN');
      await c.query('SELECT n FROM nl WHERE id = $1', [keyIn]);
    }
    if (step === 'cutover:holdTraffic' && writing === null) {
      // The hold reaches the other proxy through the catalog.
      await eventually('the hold on the other proxy', () => other.server.holds.active);
      heldOnOther = true;
      // While the mover waits for the other proxy's ack, the open transaction writes the range and commits.
      writing = (async () => {
        await sleep(300);
        await c.query('UPDATE nl SET n = n + 1 WHERE id = $1', [keyIn]).then(() => (outcome = 'ran'), (e: Error & { code?: string }) => (outcome = `${e.code}: ${e.message}`));
        await c.query('COMMIT');
        committedAt = performance.now();
      })();
    }
    if (step === 'cutover:fenceSource') fencedAt = performance.now();
  });
  try {
    const job = await mover.runJob((await mover.startMove(part.id, 1)).id);
    assert.equal(job.state, 'done', `job ended ${job.state}: ${job.reason ?? job.error ?? ''}`);
  } finally {
    await mover.close();
  }
  await writing;
  assert.ok(heldOnOther, 'the non-leader proxy held the range');
  assert.equal(outcome, 'ran', 'the write of the transaction that read the range first ran');
  assert.ok(committedAt > 0 && fencedAt > committedAt, 'the source was fenced only after that transaction committed (the proxy acked then)');
  assert.equal(other.server.holds.active, false, 'the hold was released on the non-leader');
  const { rows } = await (await cluster.shard(1)).query('SELECT n FROM nl WHERE id = $1', [keyIn]);
  assert.deepEqual(rows, [{ n: 1 }], 'the write is on the new owner');
  const again = await c.query('UPDATE nl SET n = n + 1 WHERE id = $1 RETURNING n', [keyIn]);
  assert.deepEqual(again.rows, [{ n: 2 }]);
});

test('a statement held on a non-leader proxy runs on the new owner after the switch, in its transaction, which commits intact', async () => {
  const { part, keyIn, keyOut } = await partitionOf('nl2', 0); // keyOut lives on shard 1, the target
  const c = await otherClient();
  const retriesBefore = other.server.counters.fenceRetries;
  let held: Promise<pg.QueryResult> | null = null;
  let heldSettled = false;
  let settledAtSwitch: boolean | null = null;
  let heldOnOtherAtFence = false;
  const mover = newMover({ cutoverBudgetMs: 5000 }, async (step) => {
    if (step === 'state:cutover' && held === null) {
      // The transaction starts on the target shard, outside the moving range: nothing to wait for.
      await c.query('BEGIN');
      await c.query('UPDATE nl2 SET n = n + 10 WHERE id = $1', [keyOut]);
    }
    if (step === 'cutover:fenceSource' && held === null) {
      heldOnOtherAtFence = other.server.holds.active;
      held = c.query('UPDATE nl2 SET n = n + 1 WHERE id = $1 RETURNING n', [keyIn]);
      held.then(() => (heldSettled = true), () => (heldSettled = true));
      await sleep(300);
    }
    if (step === 'cutover:switchRouting' && settledAtSwitch === null) settledAtSwitch = heldSettled;
  });
  try {
    const job = await mover.runJob((await mover.startMove(part.id, 1)).id);
    assert.equal(job.state, 'done', `job ended ${job.state}: ${job.reason ?? job.error ?? ''}`);
    // For the record (the hold now includes a catalog round trip and the other proxy's ack).
    const last = job.cutover?.attempts.at(-1);
    console.log(`# cutover with two proxies: ${last?.steps.map((x) => `${x.step} ${x.ms} ms`).join(', ')} (the hooks' 300 ms sleep is in fenceSource)`);
  } finally {
    await mover.close();
  }
  assert.ok(heldOnOtherAtFence, 'the non-leader held the range when the source was fenced');
  assert.equal(settledAtSwitch, false, 'the statement was held until the routing switch');
  const r = await held!;
  assert.deepEqual(r.rows, [{ n: 1 }], 'the held statement ran and saw the moved row');
  await c.query('COMMIT');
  assert.equal(other.server.counters.fenceRetries, retriesBefore, 'held, not bounced off the fence');
  const { rows } = await (await cluster.shard(1)).query('SELECT id, n FROM nl2 WHERE id = ANY($1::int8[]) ORDER BY id', [[keyIn, keyOut]]);
  assert.deepEqual(rows.map((x) => [Number(x.id), x.n]).sort((a, b) => a[0]! - b[0]!), [[keyIn, 1], [keyOut, 10]].sort((a, b) => a[0]! - b[0]!), 'both writes of the transaction committed on the new owner');
});

test('a live proxy that does not ack the hold aborts the cutover, never fenced; once its heartbeat lapses the next attempt waits it out, declares it dead and the move finishes', async () => {
  const { part, keyIn } = await partitionOf('nl3', 0);
  const catalog = cluster.proxy.catalog.pool;
  const version = cluster.proxy.server.routingTable().version;
  // A proxy that heartbeats but never answers a hold (hung event loop, lost LISTEN connection…).
  const ghost = (await catalog.query<{ id: number }>("INSERT INTO pgtide.proxies (address, pid, routing_version) VALUES ('ghost:1', 0, $1) RETURNING id", [version])).rows[0]!.id;
  const beat = setInterval(() => void catalog.query('UPDATE pgtide.proxies SET last_heartbeat = now(), routing_version = $2 WHERE id = $1', [ghost, version + 1000]).catch(() => {}), 200);
  const steps: string[] = [];
  const c = await otherClient();
  const mover = newMover({ cutoverBudgetMs: 600, cutoverAttempts: 2 }, (step) => {
    if (step.startsWith('cutover:')) steps.push(step);
  });
  try {
    let job = await mover.runJob((await mover.startMove(part.id, 1)).id);
    assert.equal(job.state, 'paused', `job ended ${job.state}: ${job.reason ?? job.error ?? ''}`);
    assert.ok(!steps.includes('cutover:fenceSource'), `never fenced without the ack (steps: ${steps.join(', ')})`);
    const detail = await mover.jobDetail(job.id);
    assert.ok(detail.events.some((e) => new RegExp(`cutover aborted .*not acknowledged .*proxy ${ghost} \\(ghost:1`).test(e.detail)), detail.events.map((e) => e.detail).join('\n'));
    // Nothing is held any more, anywhere: a write to the range through the other proxy goes through.
    assert.equal(other.server.holds.active, false);
    assert.equal(cluster.proxy.server.holds.active, false);
    await c.query('UPDATE nl3 SET n = n + 1 WHERE id = $1', [keyIn]);

    // The ghost stops heartbeating (3 s ago: missed beats, not dead yet). The next attempt waits,
    // without holding anything, until it is past the dead bound (5 s), declares it dead and goes on:
    // no attempt is burnt on it.
    clearInterval(beat);
    await catalog.query("UPDATE pgtide.proxies SET last_heartbeat = now() - interval '3 s' WHERE id = $1", [ghost]);
    await mover.resume(job.id);
    steps.length = 0;
    const t0 = performance.now();
    job = await mover.runJob(job.id);
    assert.equal(job.state, 'done', `job ended ${job.state}: ${job.reason ?? job.error ?? ''}`);
    assert.ok(performance.now() - t0 > 1000, 'the run waited for the suspect proxy to turn dead');
    assert.deepEqual(steps.filter((x) => x === 'cutover:holdTraffic').length, 1, `one attempt, not aborted (steps: ${steps.join(', ')})`);
    assert.ok(steps.includes('cutover:fenceSource'));
    const { rows } = await catalog.query<{ state: string }>('SELECT state FROM pgtide.proxies WHERE id = $1', [ghost]);
    assert.equal(rows[0]!.state, 'dead');
    const after = await c.query('UPDATE nl3 SET n = n + 1 WHERE id = $1 RETURNING n', [keyIn]);
    assert.deepEqual(after.rows, [{ n: 2 }]);
    const onTarget = await (await cluster.shard(1)).query('SELECT n FROM nl3 WHERE id = $1', [keyIn]);
    assert.deepEqual(onTarget.rows, [{ n: 2 }]);
  } finally {
    clearInterval(beat);
    await catalog.query("UPDATE pgtide.proxies SET state = 'dead' WHERE id = $1", [ghost]).catch(() => {});
    await mover.close();
  }
});

test('a long transaction on the range on a non-leader proxy: attempts abort unfenced and release every hold; once it commits the move finishes', async () => {
  const { part, keyIn } = await partitionOf('nl', 1);
  const keyIn2 = Array.from({ length: 100 }, (_, i) => i + 1).find((k) => k !== keyIn && hashKey('int8', k) >= part.lo && hashKey('int8', k) < part.hi)!;
  const long = await otherClient();
  const onLeader = await cluster.client({ query_timeout: 60000 });
  const steps: string[] = [];
  const before = new Map((await onLeader.query('SELECT id, n FROM nl WHERE id = ANY($1::int8[])', [[keyIn, keyIn2]])).rows.map((x) => [Number(x.id), x.n as number]));
  let open = false;
  const mover = newMover({ cutoverBudgetMs: 300, cutoverAttempts: 1000, retryDelayMs: 50 }, async (step) => {
    if (step === 'state:cutover' && !open) {
      // Opened just before the cutover (earlier, it would block the capture trigger's installation).
      open = true;
      await long.query('BEGIN');
      await long.query('UPDATE nl SET n = n + 100 WHERE id = $1', [keyIn]);
    }
    if (step.startsWith('cutover:')) steps.push(step);
  });
  let committed = false;
  try {
    const job = await mover.startMove(part.id, 0);
    const run = mover.runJob(job.id);
    run.catch(() => {});
    await eventually('two aborted attempts', () => steps.filter((x) => x === 'cutover:holdTraffic').length >= 2, 60000);
    // Between attempts nothing is held: writes to the range through either proxy go on.
    const t0 = performance.now();
    await onLeader.query('UPDATE nl SET n = n + 1 WHERE id = $1', [keyIn2]);
    assert.ok(performance.now() - t0 < 5000, 'a write through the leader was held at most one attempt');
    assert.ok(!steps.includes('cutover:fenceSource'), `the source was never fenced while the other proxy's transaction was open (steps: ${steps.join(', ')})`);
    await long.query('UPDATE nl SET n = n + 100 WHERE id = $1', [keyIn]); // the open transaction is never held
    await long.query('COMMIT');
    committed = true;
    const done = await run;
    assert.equal(done.state, 'done', `job ended ${done.state}: ${done.reason ?? done.error ?? ''}`);
    const detail = await mover.jobDetail(done.id);
    assert.ok(detail.events.some((e) => /cutover aborted .*not acknowledged .*proxy \d+ /.test(e.detail)), detail.events.map((e) => e.detail).join('\n'));
    const { rows } = await (await cluster.shard(0)).query('SELECT id, n FROM nl WHERE id = ANY($1::int8[]) ORDER BY id', [[keyIn, keyIn2]]);
    const byId = new Map(rows.map((x) => [Number(x.id), x.n as number]));
    assert.equal(byId.get(keyIn), before.get(keyIn)! + 200, 'the long transaction\'s writes are on the new owner');
    assert.equal(byId.get(keyIn2), before.get(keyIn2)! + 1);
  } finally {
    if (open && !committed) await long.query('ROLLBACK').catch(() => {});
    await mover.close();
  }
});

test('a hold whose mover died is released by the other proxies at its deadline, or sooner once its proxy is declared dead; they acked it', async () => {
  const routing = cluster.proxy.server.routingTable();
  const ks = routing.tables.find((t) => t.name === 'nl')!.keyspaceId!;
  const range = { jobId: 999_001, keyspaceId: ks, lo: -(2n ** 63n), hi: 2n ** 63n };
  const c = await otherClient();
  // A mover published the hold and died before releasing it (nothing on this side will release it).
  await cluster.proxy.clusterHolds.publishHold(range, 1500);
  await eventually('the hold on the other proxy', () => other.server.holds.active);
  await eventually('the other proxy\'s ack', async () => (await cluster.proxy.clusterHolds.missingAcks(range.jobId)).length === 0);
  const shown = (await (await cluster.admin()).query('SHOW PROXIES')).rows;
  assert.equal(shown.find((p) => p.id === String(cluster.proxy.member.proxyId))?.holds, 'job 999001 (mover)');
  assert.equal(shown.find((p) => p.id === String(other.member.proxyId))?.holds, 'job 999001 (acked)');
  const t0 = performance.now();
  const r = await c.query('UPDATE nl SET n = n + 1 WHERE id = 1 RETURNING n');
  const waited = performance.now() - t0;
  assert.equal(r.rowCount, 1);
  assert.ok(waited > 500 && waited < 10000, `the statement was held until the deadline, then ran (${Math.round(waited)} ms)`);
  assert.equal(other.server.holds.active, false);
  await cluster.proxy.clusterHolds.publishRelease(range.jobId, routing.version);

  // A hold with a long deadline whose mover's proxy was declared dead: dropped at the next routing
  // poll (every 3 s), long before its deadline.
  const catalog = cluster.proxy.catalog.pool;
  const ghost = (await catalog.query<{ id: number }>("INSERT INTO pgtide.proxies (address, pid, state) VALUES ('ghost:2', 0, 'dead') RETURNING id")).rows[0]!.id;
  const payload = `hold 999002 42 ${ghost} ${ks} ${range.lo} ${range.hi} 60000`;
  await catalog.query(`INSERT INTO pgtide.holds (job_id, keyspace_id, lo, hi, token, proxy_id, deadline) VALUES (999002, $1, $2::numeric, $3::numeric, 42, $4, now() + interval '60 s')`, [ks, range.lo.toString(), range.hi.toString(), ghost]);
  await catalog.query('SELECT pg_notify($1, $2)', ['pgtide_holds', payload]);
  await eventually('the dead mover\'s hold on the other proxy', () => other.server.holds.active);
  const t1 = performance.now();
  await c.query('UPDATE nl SET n = n + 1 WHERE id = 1');
  const waited1 = performance.now() - t1;
  assert.ok(waited1 < 10000, `held at most until the next poll, not the 60 s deadline (${Math.round(waited1)} ms)`);
  assert.equal(other.server.holds.active, false);
  await catalog.query('DELETE FROM pgtide.holds WHERE job_id = 999002');
});
