// Cleanup and rollback delete a range in many small keyset chunks (each chunk starts after the last
// key the previous one deleted): nothing of the range is left behind, nothing else is touched,
// including a colocated table whose key is not unique.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { JobState, Mover, NoProxyRoutingControl, type MoverSettings } from '../../mover/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { checkInvariants, Ledger, preload, rangeCount, RoutingView, startMoverTestBed } from './workload.js';

// Tiny cleanup chunks, so the few hundred keys of a partition take dozens of chunks.
const SETTINGS: Partial<MoverSettings> = { chunkRows: 200, graceMs: 0, cleanupChunkRows: 7, cutoverBudgetMs: 1500, retryDelayMs: 100, lockTimeoutMs: 2000, latencyFloorMs: 50, maxDelayMs: 100 };

let cluster: TestCluster;
let shards: pg.Client[];
let view: RoutingView;
const ledger = new Ledger();

before(async () => {
  ({ cluster, shards, view } = await startMoverTestBed());
  await preload(shards, view, ledger, 1, 1200);
});
after(async () => {
  view?.stop();
  await cluster?.stop();
});

async function partitionOn(shard: number) {
  const info = view.index.tableInfo('accounts')!;
  return (await cluster.proxy.catalog.loadRoutingTable()).partitions.find((p) => p.keyspaceId === info.keyspaceId && p.shardId === shard)!;
}

test('a move deletes the whole range from the source in small keyset chunks', async () => {
  const catalog = cluster.proxy.catalog;
  const part = await partitionOn(0);
  const before = await rangeCount(shards[0]!, 'accounts', 'id', part.lo, part.hi);
  assert.ok(before > 100, `the partition holds ${before} accounts`);
  const mover = new Mover({ catalog, routing: new NoProxyRoutingControl(), settings: SETTINGS });
  try {
    const done = await mover.runJob((await mover.startMove(part.id, 1)).id);
    assert.equal(done.state, JobState.Done, `${done.reason ?? done.error ?? ''}`);
    assert.equal(done.progress.cleanedRows, before * 3, 'every account and its two items deleted from the source, counted once');
    assert.equal(await rangeCount(shards[0]!, 'accounts', 'id', part.lo, part.hi), 0);
    assert.equal(await rangeCount(shards[0]!, 'items', 'account_id', part.lo, part.hi), 0);
    assert.equal(await rangeCount(shards[1]!, 'accounts', 'id', part.lo, part.hi), before);
    await view.refresh();
    await checkInvariants(shards, catalog, ledger);
  } finally {
    await mover.close();
  }
});

test('a cancelled move deletes the whole range from the target in small keyset chunks', async () => {
  const catalog = cluster.proxy.catalog;
  const part = await partitionOn(0);
  const mover = new Mover({ catalog, routing: new NoProxyRoutingControl(), settings: { ...SETTINGS, cutoverAttempts: 1 } });
  try {
    const job = await mover.startMove(part.id, 1, { cutoverBudgetMs: 0 });
    assert.equal((await mover.runJob(job.id)).state, JobState.Paused, 'the cutover cannot finish in 0 ms');
    assert.ok((await rangeCount(shards[1]!, 'accounts', 'id', part.lo, part.hi)) > 100, 'the target holds the copy');
    assert.equal((await mover.cancel(job.id)).state, JobState.RolledBack);
    assert.equal(await rangeCount(shards[1]!, 'accounts', 'id', part.lo, part.hi), 0);
    assert.equal(await rangeCount(shards[1]!, 'items', 'account_id', part.lo, part.hi), 0);
    await view.refresh();
    await checkInvariants(shards, catalog, ledger);
  } finally {
    await mover.close();
  }
});
