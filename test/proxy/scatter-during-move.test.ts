// KNOWN BUG (todo): a read without a key that goes to every shard counts the moving range twice
// while a partition moves. The target holds the copied rows from the copy until the cutover, the
// source keeps them from the routing switch until its cleanup (after the grace period), and the
// shards' queries are not restricted to the ranges each shard owns. Found by pgbench-move.test.ts:
// pgbench counts pgbench_branches to find its scale, got 2 during a move of branch 1's partition,
// and ran against accounts, tellers and branches that do not exist.
// Remove `todo` when scatter reads see each row once during a move.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Mover } from '../../mover/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  const app = await cluster.client();
  await app.query('CREATE TABLE counted (id bigint PRIMARY KEY, v int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE counted BY (id) PARTITIONS 2');
  await app.query(`INSERT INTO counted (id, v) VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 1)`).join(', ')}`);
});
after(async () => {
  await cluster?.stop();
});

test('count(*) and sum() without a key see every row once while its partition is copied, cut over and cleaned up', { todo: 'scatter reads are not restricted to the ranges each shard owns' }, async () => {
  const app = await cluster.client();
  const seen: Record<string, { n: number; s: number }> = {};
  const look = async (when: string) => {
    const r = (await app.query('SELECT count(*)::int AS n, sum(v)::int AS s FROM counted')).rows[0] as { n: number; s: number };
    seen[when] = r;
  };
  const routing = await cluster.proxy.catalog.loadRoutingTable();
  const ks = routing.tables.find((t) => t.name === 'counted')!.keyspaceId!;
  const part = routing.partitions.find((p) => p.keyspaceId === ks && p.shardId === 0)!;
  const mover = new Mover({
    catalog: cluster.proxy.catalog, routing: cluster.proxy.mover.routing, settings: { graceMs: 200 },
    hooks: {
      async onStep(_job, step) {
        if (step === 'state:catching_up') await look('copied, not yet cut over');
        if (step === 'state:cleanup') await look('switched, source not yet cleaned up');
      },
    },
  });
  try {
    const job = await mover.runJob((await mover.startMove(part.id, 1)).id);
    assert.equal(job.state, 'done');
  } finally {
    await mover.close();
  }
  await look('after the move');
  assert.deepEqual(seen, {
    'copied, not yet cut over': { n: 100, s: 100 },
    'switched, source not yet cleaned up': { n: 100, s: 100 },
    'after the move': { n: 100, s: 100 },
  });
});
