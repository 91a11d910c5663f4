// COPY … FROM STDIN split over several shards inside a transaction block belongs to the client's
// transaction: ROLLBACK undoes it, COMMIT keeps it (with what else the transaction wrote), a failed
// COPY fails the transaction. (It committed on its own before: `pgbench -i` through the proxy
// printed "there is already a transaction in progress" and "there is no transaction in progress",
// and BEGIN; COPY; ROLLBACK left the rows.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { CopyClient } from '../helpers/copy-client.js';

let cluster: TestCluster;
let app: pg.Client;
const copies: CopyClient[] = [];

before(async () => {
  cluster = await startTestCluster({ shards: 2, twoPhaseCommit: true });
  app = await cluster.client();
  await app.query('CREATE TABLE txcopy (id bigint PRIMARY KEY, v int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE txcopy BY (id)');
});
after(async () => {
  for (const c of copies) c.close();
  await cluster?.stop();
});

async function copyClient(): Promise<CopyClient> {
  const c = await CopyClient.connect(cluster.proxy.port);
  copies.push(c);
  return c;
}

const rows = (from: number, n: number) => [Buffer.from(Array.from({ length: n }, (_, i) => `${from + i}\t1\n`).join(''))];

async function perShard(): Promise<number[]> {
  const out: number[] = [];
  for (const i of [0, 1]) out.push((await (await cluster.shard(i)).query('SELECT count(*)::int AS n FROM txcopy')).rows[0].n);
  return out;
}

test('BEGIN; COPY (rows for both shards); ROLLBACK leaves nothing', async () => {
  const c = await copyClient();
  assert.equal((await c.query('BEGIN')).status, 'T');
  const r = await c.copyIn('COPY txcopy (id, v) FROM STDIN', rows(1, 40));
  assert.equal(r.error, null);
  assert.equal(r.tag, 'COPY 40');
  assert.equal(r.status, 'T', 'still in the transaction after the COPY');
  assert.equal((await app.query('SELECT count(*)::int AS n FROM txcopy')).rows[0].n, 0, 'not visible outside the transaction');
  assert.equal((await c.query('ROLLBACK')).status, 'I');
  assert.deepEqual(await perShard(), [0, 0], 'ROLLBACK undid the COPY on every shard');
});

test('BEGIN; INSERT; COPY; COMMIT keeps everything; a failed COPY fails the transaction and ROLLBACK undoes it all', async () => {
  const c = await copyClient();
  await c.query('BEGIN');
  assert.equal((await c.query('INSERT INTO txcopy (id, v) VALUES (1000, 1)')).error, null);
  assert.equal((await c.copyIn('COPY txcopy (id, v) FROM STDIN', rows(1, 40))).tag, 'COPY 40');
  const commit = await c.query('COMMIT');
  assert.equal(commit.error, null);
  assert.equal(commit.status, 'I');
  const counts = await perShard();
  assert.equal(counts[0]! + counts[1]!, 41);
  assert.ok(counts[0]! > 0 && counts[1]! > 0, `rows on both shards (${counts})`);

  // A duplicate key on one shard: the COPY fails, the transaction is failed, ROLLBACK undoes its INSERT too.
  await c.query('BEGIN');
  await c.query('INSERT INTO txcopy (id, v) VALUES (2000, 1)');
  const dup = await c.copyIn('COPY txcopy (id, v) FROM STDIN', rows(35, 10));
  assert.equal(dup.error?.C, '23505');
  assert.equal(dup.status, 'E', 'the transaction is failed');
  const after = await c.query('COMMIT');
  assert.equal(after.tag, 'ROLLBACK', 'COMMIT of a failed transaction rolls back');
  assert.equal((await app.query('SELECT count(*)::int AS n FROM txcopy')).rows[0].n, 41, 'nothing of the failed transaction remains');
  assert.equal((await app.query('SELECT count(*)::int AS n FROM txcopy WHERE id = 2000')).rows[0].n, 0);
});

test('autocommit COPY still commits on its own', async () => {
  const c = await copyClient();
  const r = await c.copyIn('COPY txcopy (id, v) FROM STDIN', rows(5000, 30));
  assert.equal(r.tag, 'COPY 30');
  assert.equal(r.status, 'I');
  assert.equal((await app.query('SELECT count(*)::int AS n FROM txcopy WHERE id >= 5000')).rows[0].n, 30);
});
