// Mover integration tests on real servers: a move under concurrent writers, cutover abort + cancel, bad input, split/merge.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { RoutingIndex } from '../../config/routing.js';
import { InProcessRoutingControl, JobState, Mover, NoProxyRoutingControl, type MoverSettings } from '../../mover/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { checkInvariants, FENCE, Ledger, preload, rangeCount, RoutingView, startWriters, startMoverTestBed } from './workload.js';

// Correctness tests on a shared CI machine: the throttle (tested on its own in throttle.test) is kept loose.
const SETTINGS: Partial<MoverSettings> = { chunkRows: 200, graceMs: 300, cutoverBudgetMs: 1500, retryDelayMs: 100, lockTimeoutMs: 2000, drainBatch: 500, lagBound: 50, verifyChunkRows: 300, latencyFloorMs: 50, maxDelayMs: 100 };

describe('mover', () => {
  let cluster: TestCluster;
  let shards: pg.Client[];
  let view: RoutingView;
  const ledger = new Ledger();

  before(async () => {
    ({ cluster, shards, view } = await startMoverTestBed());
    await preload(shards, view, ledger, 100000, 3000);
  });

  after(async () => {
    view?.stop();
    await cluster?.stop();
  });

  /** The first partition of the accounts key space that lives on `shard`. */
  function partitionOn(shard: number) {
    const info = view.index.tableInfo('accounts')!;
    return cluster.proxy.server.routingTable().partitions.find((p) => p.keyspaceId === info.keyspaceId && p.shardId === shard)!;
  }

  test('moves a partition under concurrent writers: every key once, on its owner; fence; repair; proxy follows', async () => {
    const catalog = cluster.proxy.catalog;
    const part = partitionOn(0);
    const urls = cluster.shards.map((s) => s.url('app'));
    const writers = startWriters(urls, view, ledger, { writers: 4, keys: 400 });
    await new Promise((r) => setTimeout(r, 300));
    let fenceCode: string | undefined;
    let corrupted = false;
    const routing = new InProcessRoutingControl([cluster.proxy.server], () => catalog.loadRoutingTable());
    const mover = new Mover({
      catalog, routing, settings: SETTINGS,
      hooks: {
        async onStep(_id, step) {
          if (step === 'state:catching_up' && !corrupted) {
            // A target row that differs without any changelog entry: only verification can find it.
            corrupted = true;
            await shards[1]!.query(`UPDATE accounts SET balance = balance + 1000 WHERE id = (SELECT min(id) FROM accounts WHERE id >= 100000 AND hashint8extended(id, 0) >= '${part.lo}'::int8 AND hashint8extended(id, 0) < '${part.hi}'::int8)`);
          }
          if (step === 'state:cleanup' && fenceCode === undefined) {
            const key = 100000 + [...Array(3000).keys()].find((i) => { const h = view.index.partitionForKey(view.index.tableInfo('accounts')!, 100000 + i); return h.id === part.id; })!;
            try {
              await shards[0]!.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [key]);
              fenceCode = 'none';
            } catch (err) {
              fenceCode = (err as { code?: string }).code;
            }
          }
        },
      },
    });
    try {
      const job = await mover.startMove(part.id, 1);
      assert.equal(job.state, JobState.Planned);
      const done = await mover.runJob(job.id);
      const stats = await writers.stop();
      assert.equal(done.state, JobState.Done, `job ended ${done.state}: ${done.error ?? done.reason}`);
      assert.deepEqual(stats.errors, [], 'no writer failed');
      assert.ok(stats.ops > 50, `writers made progress (${stats.ops} ops)`);
      assert.equal(fenceCode, FENCE, 'a stale write to the source hits the fence');
      await checkInvariants(shards, catalog, ledger);
      assert.equal(await rangeCount(shards[0]!, 'accounts', 'id', part.lo, part.hi), 0, 'no account of the range left on the source');
      assert.equal(await rangeCount(shards[0]!, 'items', 'account_id', part.lo, part.hi), 0, 'no item of the range left on the source');
      const trig = await shards[0]!.query("SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'pgtide_capture_%'");
      assert.equal(trig.rows[0].n, 0, 'triggers dropped');
      const detail = await mover.jobDetail(job.id);
      assert.ok(detail.verification?.ok, 'verified');
      assert.ok(detail.verification!.tables.some((t) => t.repairedKeys >= 1), 'the corrupted row was found and repaired');
      assert.ok(detail.rowsCopied > 500, `rows copied ${detail.rowsCopied}`);
      assert.ok(detail.cutoverPauseMs !== null && detail.cutoverPauseMs >= 0);
      assert.equal(detail.etaSeconds, 0);
      const states = detail.events.filter((e) => e.fromState !== e.toState).map((e) => e.toState);
      assert.deepEqual(states, ['planned', 'preparing', 'copying', 'catching_up', 'cutover', 'cleanup', 'done']);
      // The in-process proxy installed the new version and routes the range to shard 1.
      assert.equal(cluster.proxy.server.routingTable().partitions.find((p) => p.id === part.id)!.shardId, 1);
      const client = await cluster.client();
      const key = [...ledger.accounts.keys()].find((k) => view.owner(k) === 1 && new RoutingIndex(cluster.proxy.server.routingTable()).partitionForKey(view.index.tableInfo('accounts')!, k).id === part.id)!;
      const r = await client.query('SELECT balance FROM accounts WHERE id = $1', [key]);
      assert.equal(Number(r.rows[0].balance), ledger.accounts.get(key));
      assert.equal((await mover.listJobs()).find((j) => j.id === job.id)!.state, JobState.Done);
    } finally {
      await writers.stop().catch(() => {});
      await mover.close();
    }
  });

  test('a cutover that cannot finish in budget aborts to the source; cancel rolls back cleanly', async () => {
    const catalog = cluster.proxy.catalog;
    const part = partitionOn(0);
    const mover = new Mover({ catalog, routing: new NoProxyRoutingControl(), settings: { ...SETTINGS, cutoverAttempts: 2 } });
    try {
      const job = await mover.startMove(part.id, 1, { cutoverBudgetMs: 0 });
      const paused = await mover.runJob(job.id);
      assert.equal(paused.state, JobState.Paused);
      assert.match(paused.reason ?? '', /within 0 ms in 2 attempts/);
      const detail = await mover.jobDetail(job.id);
      assert.equal(detail.cutoverAttempts, 2);
      assert.ok(detail.events.some((e) => /cutover aborted/.test(e.detail)));
      // The source still owns the range and takes writes (no fence), the changelog captures them.
      const key = [...ledger.accounts.keys()].find((k) => view.index.partitionForKey(view.index.tableInfo('accounts')!, k).id === part.id)!;
      await shards[0]!.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [key]);
      ledger.accounts.set(key, ledger.accounts.get(key)! + 1);
      assert.ok((await rangeCount(shards[1]!, 'accounts', 'id', part.lo, part.hi)) > 0, 'target holds the copy');
      const rolled = await mover.cancel(job.id);
      assert.equal(rolled.state, JobState.RolledBack);
      assert.equal(await rangeCount(shards[1]!, 'accounts', 'id', part.lo, part.hi), 0, 'target copy deleted');
      assert.equal(await rangeCount(shards[1]!, 'items', 'account_id', part.lo, part.hi), 0);
      const trig = await shards[0]!.query("SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'pgtide_capture_%'");
      assert.equal(trig.rows[0].n, 0, 'triggers dropped');
      const p = (await catalog.loadRoutingTable()).partitions.find((x) => x.id === part.id)!;
      assert.equal(p.shardId, 0);
      assert.equal(p.state, 'active');
      await checkInvariants(shards, catalog, ledger);
      assert.equal((await mover.cancel(job.id)).state, JobState.RolledBack, 'cancelling again changes nothing');
    } finally {
      await mover.close();
    }
  });

  test('a fence that times out on a lock held by a transaction on another range of the table aborts the attempt without a second lock wait', async () => {
    // The transaction stands for one the proxy holds: it wrote another range of the table on the
    // source (RowExclusiveLock), and its next statement is on the held range, so it waits for the
    // cutover while the fence's LOCK TABLE waits for it. The attempt must abort as an attempt
    // (counted, back to catching_up, paused after cutoverAttempts), not as a transient error from
    // lifting a fence that never went up (a LOCK TABLE waiting for the same transaction again).
    const catalog = cluster.proxy.catalog;
    const part = partitionOn(0);
    const blocker = await cluster.shard(0);
    let blocking = false;
    const mover = new Mover({
      catalog, routing: new NoProxyRoutingControl(),
      settings: { ...SETTINGS, cutoverAttempts: 1, cutoverBudgetMs: 500, lockTimeoutMs: 500, transientRetryMs: 3000 },
      hooks: {
        async onStep(_id, step) {
          if (step === 'state:cutover' && !blocking) {
            blocking = true;
            await blocker.query('BEGIN');
            await blocker.query('LOCK TABLE accounts IN ROW EXCLUSIVE MODE');
          }
        },
      },
    });
    try {
      const job = await mover.startMove(part.id, 1);
      const paused = await mover.runJob(job.id);
      const detail = await mover.jobDetail(job.id);
      assert.equal(paused.state, JobState.Paused, `job ${job.id}: ${paused.state} (${paused.reason ?? ''}); events: ${detail.events.map((e) => e.detail).join(' | ')}`);
      assert.match(paused.reason ?? '', /in 1 attempts/);
      assert.ok(detail.events.some((e) => /cutover aborted \(attempt 1\).*lock timeout/.test(e.detail)), 'the attempt aborted on the fence\'s lock timeout');
      assert.ok(!detail.events.some((e) => /waiting for a server/.test(e.detail)), 'no transient retry');
      await blocker.query('ROLLBACK');
      const rolled = await mover.cancel(job.id);
      assert.equal(rolled.state, JobState.RolledBack);
      const p = (await catalog.loadRoutingTable()).partitions.find((x) => x.id === part.id)!;
      assert.equal(p.shardId, 0);
      await checkInvariants(shards, catalog, ledger);
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
      await mover.close();
    }
  });

  test('bad input: unknown partition, busy partition, target down, schema differs, past the point of no return', async () => {
    const catalog = cluster.proxy.catalog;
    const mover = new Mover({ catalog, settings: SETTINGS });
    try {
      await assert.rejects(mover.startMove(99999, 1), { sqlstate: '42704' });
      const part = partitionOn(0);
      const job = await mover.startMove(part.id, 1);
      await assert.rejects(mover.startMove(part.id, 1), { sqlstate: '55006' });
      await assert.rejects(mover.splitPartition(part.id), { sqlstate: '55006' });
      const rolled = await mover.cancel(job.id);
      assert.equal(rolled.state, JobState.RolledBack);
      await catalog.pool.query("INSERT INTO pgtide.shards (id, url, state) VALUES (9, 'postgres://app:x@127.0.0.1:1/app', 'active')");
      await assert.rejects(mover.startMove(part.id, 9), { sqlstate: '08006' });
      await catalog.pool.query('DELETE FROM pgtide.shards WHERE id = 9');
      await shards[0]!.query('CREATE TABLE odd (id int4 PRIMARY KEY, v text)');
      await shards[1]!.query('CREATE TABLE odd (id int4 PRIMARY KEY, v int8)');
      await catalog.shardTable('odd', 'id', 'int4', { alone: true, partitions: 2 });
      const odd = (await catalog.loadRoutingTable()).partitions.find((p) => p.shardId === 0 && p.keyspaceId !== part.keyspaceId)!;
      await assert.rejects(mover.startMove(odd.id, 1), (err: Error & { sqlstate?: string }) => err.sqlstate === '42804' && /column v is text on the source but bigint/.test(err.message));
      assert.equal((await mover.listJobs()).filter((j) => j.partitionId === odd.id).length, 0, 'nothing started');
      const done = (await mover.listJobs()).find((j) => j.state === JobState.Done)!;
      await assert.rejects(mover.cancel(done.id), { sqlstate: '55000', code: 'PAST_POINT_OF_NO_RETURN' });
      await assert.rejects(mover.pause(424242), { sqlstate: '42704' });
    } finally {
      await mover.close();
    }
  });

  test('split and merge are metadata only; the cutover dry run lists its steps', async () => {
    const catalog = cluster.proxy.catalog;
    const mover = new Mover({ catalog, settings: SETTINGS });
    try {
      const part = partitionOn(0);
      const before = await Promise.all(shards.map((s) => s.query('SELECT count(*)::int AS n FROM accounts')));
      const split = await mover.splitPartition(part.id);
      const t = await catalog.loadRoutingTable();
      const left = t.partitions.find((p) => p.id === split.left)!;
      const right = t.partitions.find((p) => p.id === split.right)!;
      assert.equal(left.hi, right.lo);
      assert.equal(left.shardId, right.shardId);
      const merged = await mover.mergePartitions(split.left, split.right);
      assert.ok(merged.version > split.version);
      const t2 = await catalog.loadRoutingTable();
      const back = t2.partitions.find((p) => p.id === merged.kept)!;
      assert.equal(back.lo, part.lo);
      assert.equal(back.hi, part.hi);
      const afterCounts = await Promise.all(shards.map((s) => s.query('SELECT count(*)::int AS n FROM accounts')));
      assert.deepEqual(afterCounts.map((r) => r.rows[0].n), before.map((r) => r.rows[0].n), 'no row moved');
      const other = t2.partitions.find((p) => p.keyspaceId === part.keyspaceId && p.shardId === 1 && (p.lo === back.hi || p.hi === back.lo));
      if (other) await assert.rejects(mover.mergePartitions(back.id, other.id), { sqlstate: '0A000' });
      const job = await mover.startMove(back.id, 1);
      const steps = await mover.dryRunCutover(job.id);
      assert.deepEqual(steps.map((s) => s.split(': ')[1]!.split(/[ :]/)[0]), ['holdTraffic', 'waitForInFlight', 'fenceSource', 'drainFinalChanges', 'switchRouting', 'installRouting', 'releaseTraffic']);
      assert.match(steps[4]!, /POINT OF NO RETURN/);
      assert.equal((await mover.cancel(job.id)).state, JobState.RolledBack);
    } finally {
      await mover.close();
    }
  });
  test('with foreground statements on the shards the copy is paced and runs in the copy worker; nothing is lost', async () => {
    const catalog = cluster.proxy.catalog;
    const part = partitionOn(0);
    const urls = cluster.shards.map((s) => s.url('app'));
    const writers = startWriters(urls, view, ledger, { writers: 2, keys: 200 });
    // The leader proxy's view of its own statements: steady, 5 ms p99 on every shard.
    const asked: number[] = [];
    const foreground = { recentQuantile: (shard: number) => (asked.push(shard), { ms: 5, n: 200 }) };
    const routing = new InProcessRoutingControl([cluster.proxy.server], () => catalog.loadRoutingTable());
    const mover = new Mover({ catalog, routing, foreground, settings: { ...SETTINGS, copyInWorker: 'auto' } });
    try {
      const job = await mover.startMove(part.id, 1);
      const done = await mover.runJob(job.id);
      const stats = await writers.stop();
      assert.equal(done.state, JobState.Done, `job ended ${done.state}: ${done.error ?? done.reason}`);
      assert.deepEqual(stats.errors, []);
      const detail = await mover.jobDetail(job.id);
      assert.equal(detail.throttle?.fgBaselineMs, 5, 'the foreground p99 before the copy is the baseline');
      assert.ok(detail.throttle?.bytesPerSec !== undefined && detail.throttle.bytesPerSec > 0, `the copy was paced (${JSON.stringify(detail.throttle)})`);
      assert.ok(asked.includes(0), 'the source\'s statements were consulted');
      // copyInWorker 'auto' with traffic: the chunks ran on the worker's own connections.
      assert.ok(mover.copier.started, 'the copy worker was started');
      await checkInvariants(shards, catalog, ledger);
      assert.equal(await rangeCount(shards[0]!, 'accounts', 'id', part.lo, part.hi), 0, 'no account of the range left on the source');
    } finally {
      await writers.stop().catch(() => {});
      await mover.close();
    }
  });
});
