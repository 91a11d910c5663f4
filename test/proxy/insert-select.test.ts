// INSERT INTO sharded (cols) SELECT … from generate_series, VALUES or reference tables: every shard
// runs the query and keeps the rows it owns, in one all-or-nothing write; queries whose keys could
// differ between shards are refused with 0A000.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { hashKey } from '../mover/workload.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

describe('INSERT … SELECT into a sharded table', () => {
  let cluster: TestCluster;
  let app: pg.Client;
  let shards: pg.Client[];

  before(async () => {
    cluster = await startTestCluster({ shards: 2 });
    app = await cluster.client();
    shards = [await cluster.shard(0), await cluster.shard(1)];
    const admin = await cluster.admin();
    await app.query('CREATE TABLE isel (id int8 PRIMARY KEY, v text NOT NULL)');
    await admin.query('SHARD TABLE isel BY (id) PARTITIONS 4');
    await app.query('CREATE TABLE iref (k int PRIMARY KEY, name text)');
    await admin.query('REFERENCE TABLE iref');
    await app.query(`INSERT INTO iref VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
  });

  after(async () => {
    await cluster?.stop();
  });

  function owner(id: number): number {
    const routing = cluster.proxy.server.routingTable();
    const ks = routing.tables.find((t) => t.name === 'isel')!.keyspaceId!;
    const h = hashKey('int8', String(id));
    return routing.partitions.find((p) => p.keyspaceId === ks && h >= p.lo && h < p.hi)!.shardId;
  }

  /** Every stored id, per shard, read from the shards directly. */
  async function stored(): Promise<number[][]> {
    return Promise.all(shards.map(async (s) => (await s.query('SELECT id FROM isel ORDER BY id')).rows.map((r) => Number(r.id))));
  }

  async function assertPlaced(expected: number): Promise<void> {
    const per = await stored();
    assert.equal(per[0]!.length + per[1]!.length, expected, 'each row exactly once');
    assert.ok(per[0]!.length > 0 && per[1]!.length > 0, 'rows on both shards');
    per.forEach((ids, shard) => {
      const misplaced = ids.filter((id) => owner(id) !== shard);
      assert.deepEqual(misplaced, [], `shard ${shard} holds only keys it owns`);
    });
  }

  test('10,000 rows from generate_series through the simple protocol (psql), each on its owner', async () => {
    const r = await app.query(`INSERT INTO isel (id, v)
      SELECT g, md5(g::text) FROM generate_series(1, 10000) AS g -- a trailing comment`);
    assert.equal(r.rowCount, 10000);
    await assertPlaced(10000);
    const back = await app.query('SELECT v FROM isel WHERE id = 4242');
    assert.equal(back.rows[0].v, (await shards[owner(4242)]!.query(`SELECT md5('4242') AS m`)).rows[0].m);
  });

  test('with parameters (extended protocol), the key not first, and RETURNING', async () => {
    const r = await app.query('INSERT INTO isel (v, id) SELECT $1 || g, g FROM generate_series($2::int, $3::int) g RETURNING id', ['x', 10001, 10100]);
    assert.equal(r.rowCount, 100);
    assert.deepEqual(r.rows.map((x) => Number(x.id)).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => 10001 + i));
    await assertPlaced(10100);
  });

  test('ON CONFLICT DO NOTHING counts only new rows; a reference table can be the source', async () => {
    const r = await app.query('INSERT INTO isel (id, v) SELECT g, \'again\' FROM generate_series(10001, 10200) g ON CONFLICT (id) DO NOTHING');
    assert.equal(r.rowCount, 100);
    const fromRef = await app.query('INSERT INTO isel (id, v) SELECT k + 50000, name FROM iref WHERE k >= 2');
    assert.equal(fromRef.rowCount, 2);
    assert.equal((await app.query('SELECT v FROM isel WHERE id = 50003')).rows[0].v, 'three');
    await assertPlaced(10202);
  });

  test('a duplicate on one shard fails the whole statement: 23505, nothing inserted anywhere', async () => {
    const before = await stored();
    await assert.rejects(app.query('INSERT INTO isel (id, v) SELECT g, \'dup\' FROM generate_series(20001, 20100) g UNION ALL SELECT 1, \'dup\''),
      (e: Error & { code?: string }) => e.code === '23505');
    assert.deepEqual(await stored(), before);
    assert.equal((await app.query('SELECT 1 AS ok')).rows[0].ok, 1, 'the session goes on');
  });

  test('refused with 0A000 and a reason: a volatile query, no column list, a sharded source', async () => {
    const cases: [string, RegExp][] = [
      ['INSERT INTO isel (id, v) SELECT (random() * 1e6)::int8, \'r\' FROM generate_series(1, 10)', /calls random\(\), which would give each shard different rows/],
      ['INSERT INTO isel (id, v) SELECT nextval(\'s\'), \'r\'', /calls nextval\(\)/],
      ['INSERT INTO isel SELECT g, \'x\' FROM generate_series(1, 3) g', /must name its columns/],
      ['INSERT INTO isel (v) SELECT \'x\'', /must give the shard key column id/],
      ['INSERT INTO isel (id, v) SELECT id + 100000, v FROM isel', /reads sharded tables/],
    ];
    const count = (await app.query('SELECT count(*)::int AS n FROM isel')).rows[0].n;
    for (const [sql, message] of cases) {
      await assert.rejects(app.query(sql), (e: Error & { code?: string }) => e.code === '0A000' && message.test(e.message), sql);
    }
    assert.equal((await app.query('SELECT count(*)::int AS n FROM isel')).rows[0].n, count);
  });

  test('EXPLAIN ROUTE says every shard runs it and keeps its own rows', async () => {
    const admin = await cluster.admin();
    const r = await admin.query('EXPLAIN ROUTE INSERT INTO isel (id, v) SELECT g, \'x\' FROM generate_series(1, 3) g');
    assert.match(JSON.stringify(r.rows), /insert … select on every shard/);
  });
});
