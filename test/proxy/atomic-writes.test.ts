// Writes that span shards are all or nothing: autocommit statements (split multi-row INSERTs,
// writes without a key, reference-table writes) and the first statement of a transaction block.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { hashKey } from '../mover/workload.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

describe('atomic writes across shards', () => {
  let cluster: TestCluster;
  let app: pg.Client;
  let shards: pg.Client[];

  before(async () => {
    cluster = await startTestCluster({ shards: 2, twoPhaseCommit: true });
    app = await cluster.client();
    shards = [await cluster.shard(0), await cluster.shard(1)];
    const admin = await cluster.admin();
    await app.query('CREATE TABLE acct (id int8 PRIMARY KEY, v int NOT NULL)');
    await admin.query('SHARD TABLE acct BY (id)');
    await app.query('CREATE TABLE country (code text PRIMARY KEY, name text)');
    await admin.query('REFERENCE TABLE country');
  });

  after(async () => {
    await cluster?.stop();
  });

  /** id → v as stored, read from each shard directly. */
  async function stored(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const s of shards) for (const r of (await s.query('SELECT id, v FROM acct')).rows) out.set(Number(r.id), r.v);
    return out;
  }

  /** Keys 1..n on both shards (so a statement over them spans the shards). */
  function shardOf(id: number): number {
    const routing = cluster.proxy.server.routingTable();
    const ks = routing.tables.find((t) => t.name === 'acct')!.keyspaceId!;
    const h = hashKey('int8', String(id));
    return routing.partitions.find((p) => p.keyspaceId === ks && h >= p.lo && h < p.hi)!.shardId;
  }

  async function reset(ids: number[]): Promise<void> {
    await app.query('DELETE FROM acct');
    await app.query(`INSERT INTO acct (id, v) VALUES ${ids.map((id) => `(${id}, 0)`).join(', ')}`);
  }

  for (const twoPhase of [true, false]) {
    const mode = twoPhase ? 'two-phase commit' : 'plain commit';

    test(`${mode}: a multi-row INSERT that fails on one shard leaves no row on any shard`, async () => {
      await app.query(`SET pgtide.two_phase_commit = ${twoPhase ? 'on' : 'off'}`);
      await reset([1]);
      const ids = [1, 2, 3, 4, 5, 6, 7, 8];
      assert.ok(new Set(ids.map(shardOf)).size === 2, 'the rows span both shards');
      await assert.rejects(app.query(`INSERT INTO acct (id, v) VALUES ${ids.map((id) => `(${id}, 9)`).join(', ')}`), (e: { code?: string }) => e.code === '23505');
      assert.deepEqual([...(await stored())], [[1, 0]], 'only the row that was there before');
      // The same statement without the duplicate succeeds on both shards and reports every row.
      const ok = await app.query(`INSERT INTO acct (id, v) VALUES ${ids.slice(1).map((id) => `(${id}, 9)`).join(', ')}`);
      assert.equal(ok.rowCount, 7);
      assert.equal((await stored()).size, 8);
    });

    test(`${mode}: a write without a key that fails on one shard changes nothing anywhere`, async () => {
      await app.query(`SET pgtide.two_phase_commit = ${twoPhase ? 'on' : 'off'}`);
      await reset([1, 2, 3, 4, 5, 6]);
      await assert.rejects(app.query('UPDATE acct SET v = 10 / (id - 1)'), (e: { code?: string }) => e.code === '22012');
      assert.ok([...(await stored()).values()].every((v) => v === 0), 'no shard kept its part of the update');
      // Extended protocol (parameters) too.
      await assert.rejects(app.query('UPDATE acct SET v = $1 / (id - 1)', [10]), (e: { code?: string }) => e.code === '22012');
      assert.ok([...(await stored()).values()].every((v) => v === 0));
      const ok = await app.query('UPDATE acct SET v = v + $1', [2]);
      assert.equal(ok.rowCount, 6);
      assert.ok([...(await stored()).values()].every((v) => v === 2));
    });

    test(`${mode}: a reference-table write that fails on one shard is undone on the others`, async () => {
      await app.query(`SET pgtide.two_phase_commit = ${twoPhase ? 'on' : 'off'}`);
      await app.query('DELETE FROM country');
      // Make the write fail on shard 1 only: a row there that the proxy did not write.
      await shards[1]!.query("INSERT INTO country (code, name) VALUES ('nl', 'stray')");
      await assert.rejects(app.query("INSERT INTO country (code, name) VALUES ('nl', 'Netherlands')"), (e: { code?: string }) => e.code === '23505');
      assert.equal((await shards[0]!.query('SELECT count(*)::int AS n FROM country')).rows[0].n, 0, 'shard 0 rolled back');
      await shards[1]!.query('DELETE FROM country');
      await app.query("INSERT INTO country (code, name) VALUES ('nl', 'Netherlands')");
      for (const s of shards) assert.equal((await s.query('SELECT count(*)::int AS n FROM country')).rows[0].n, 1);
    });
  }

  test('a transaction block whose first statement spans shards runs it inside the transaction on every shard', async () => {
    await app.query('SET pgtide.two_phase_commit = on');
    await reset([1, 2, 3, 4, 5, 6]);
    await app.query('BEGIN');
    await app.query('UPDATE acct SET v = 99');
    await app.query("INSERT INTO acct (id, v) VALUES (11, 1), (12, 2), (13, 3), (14, 4)");
    await app.query('ROLLBACK');
    const after = await stored();
    assert.equal(after.size, 6, 'no inserted row survived the rollback');
    assert.ok([...after.values()].every((v) => v === 0), 'no shard kept the update');
    await app.query('BEGIN');
    await app.query('UPDATE acct SET v = 7');
    await app.query('COMMIT');
    assert.ok([...(await stored()).values()].every((v) => v === 7));
  });

  test('a multi-row INSERT with parameters is split per shard (unnamed, named, RETURNING, ON CONFLICT)', async () => {
    await app.query('SET pgtide.two_phase_commit = on');
    await app.query('DELETE FROM acct');
    const ids = [21, 22, 23, 24, 25, 26];
    assert.ok(new Set(ids.map(shardOf)).size === 2, 'the rows span both shards');
    const values = ids.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
    const r = await app.query(`INSERT INTO acct (id, v) VALUES ${values} RETURNING id, v`, ids.flatMap((id) => [id, id * 10]));
    assert.equal(r.rowCount, 6);
    assert.deepEqual(r.rows.map((x) => Number(x.id)).sort((a, b) => a - b), ids, 'RETURNING brings every shard\'s rows');
    for (const id of ids) {
      const own = (await shards[shardOf(id)]!.query('SELECT v FROM acct WHERE id = $1', [id])).rows;
      assert.deepEqual(own, [{ v: id * 10 }], `row ${id} on its owner`);
      assert.equal((await shards[1 - shardOf(id)]!.query('SELECT count(*)::int AS n FROM acct WHERE id = $1', [id])).rows[0].n, 0, `row ${id} only there`);
    }
    // A named statement, run twice with other values; the tail has a parameter of its own.
    const upsert = { name: 'upsert-acct', text: 'INSERT INTO acct (id, v) VALUES ($1::int8, $2), ($3::int8, $2), ($4::int8, $2) ON CONFLICT (id) DO UPDATE SET v = acct.v + $5' };
    const a = await app.query({ ...upsert, values: [21, 1, 22, 31, 1000] });
    assert.equal(a.rowCount, 3);
    const b = await app.query({ ...upsert, values: [23, 1, 24, 32, 1000] });
    assert.equal(b.rowCount, 3);
    const now = await stored();
    assert.equal(now.get(21), 1210);
    assert.equal(now.get(24), 1240);
    assert.equal(now.get(31), 1);
    assert.equal(now.get(32), 1);
    assert.equal(now.size, 8);
    // A duplicate on one shard: nothing of the statement is left anywhere.
    await assert.rejects(app.query('INSERT INTO acct (id, v) VALUES ($1, 0), ($2, 0), ($3, 0), ($4, 0)', [41, 42, 43, 21]), (e: { code?: string }) => e.code === '23505');
    assert.equal((await stored()).size, 8);
  });

  test('no prepared transaction is left behind', async () => {
    for (const s of shards) assert.equal((await s.query('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0].n, 0);
  });
});
