// Transaction pooling: many clients over few server connections, prepared statements, clean servers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 5 });
  const app = await cluster.client();
  await app.query('CREATE TABLE counters (id bigint PRIMARY KEY, n int NOT NULL, note text)');
  const admin = await cluster.admin();
  await admin.query('SHARD TABLE counters BY (id)');
  await app.query('INSERT INTO counters (id, n) SELECT g, 0 FROM generate_series(1, 200) g');
});
after(async () => {
  await cluster?.stop();
});

test('50 concurrent clients over 5 server connections per shard, prepared statements in and out of transactions', async () => {
  const clients = await Promise.all(Array.from({ length: 50 }, () => cluster.client()));
  const rounds = 20;
  await Promise.all(clients.map(async (c, ci) => {
    for (let r = 0; r < rounds; r++) {
      const id = ((ci * rounds + r) % 200) + 1;
      // Named prepared statement outside a transaction.
      const read = await c.query({ name: 'read-counter', text: 'SELECT id, n FROM counters WHERE id = $1', values: [id] });
      assert.equal(Number(read.rows[0].id), id);
      // Named prepared statements inside a transaction, on the key's shard.
      await c.query('BEGIN');
      await c.query({ name: 'bump', text: 'UPDATE counters SET n = n + 1 WHERE id = $1', values: [id] });
      const after = await c.query({ name: 'read-counter', text: 'SELECT id, n FROM counters WHERE id = $1', values: [id] });
      assert.ok(after.rows[0].n >= 1);
      await c.query('COMMIT');
      // Unnamed extended query and a simple query.
      const unnamed = await c.query('SELECT $1::int + 1 AS x', [r]);
      assert.equal(unnamed.rows[0].x, r + 1);
      const simple = await c.query(`SELECT n FROM counters WHERE id = ${id}`);
      assert.ok(simple.rows[0].n >= 1);
    }
  }));
  // Every increment landed exactly once.
  const admin = await cluster.admin();
  const sum = await (await cluster.client()).query('SELECT sum(n)::int AS s FROM counters');
  const total = sum.rows.reduce((acc, r) => acc + (r.s ?? 0), 0);
  assert.equal(total, 50 * rounds);
  const pools = await admin.query('SHOW POOLS');
  for (const p of pools.rows) assert.ok(Number(p.open) <= 5, `shard ${p.shard} used at most 5 server connections (used ${p.open})`);
  const servers = await admin.query('SHOW SERVERS');
  assert.ok(servers.rows.length <= 10);
  for (const s of servers.rows) assert.equal(s.tx, 'I', 'no server is left inside a transaction');
});

test('a SET in one client does not leak to another client through a shared server', async () => {
  const a = await cluster.client();
  const b = await cluster.client();
  await a.query("SET statement_timeout = '1234ms'");
  // Force many transactions so both clients cycle over the same few servers.
  for (let i = 0; i < 30; i++) {
    const ra = await a.query('SHOW statement_timeout');
    assert.equal(ra.rows[0].statement_timeout, '1234ms', 'the client that SET it keeps its setting on every server');
    const rb = await b.query('SHOW statement_timeout');
    assert.equal(rb.rows[0].statement_timeout, '0', 'the other client never sees it');
  }
  await a.query('RESET statement_timeout');
  assert.equal((await a.query('SHOW statement_timeout')).rows[0].statement_timeout, '0');
});

test('startup parameters (application_name) are applied per client', async () => {
  const a = await cluster.client({ application_name: 'alpha' });
  const b = await cluster.client({ application_name: 'beta' });
  for (let i = 0; i < 10; i++) {
    assert.equal((await a.query('SHOW application_name')).rows[0].application_name, 'alpha');
    assert.equal((await b.query('SHOW application_name')).rows[0].application_name, 'beta');
  }
});

test('an error inside a transaction leaves the client in a failed transaction until ROLLBACK, and the server clean', async () => {
  const c = await cluster.client();
  await c.query('BEGIN');
  await c.query('UPDATE counters SET note = $1 WHERE id = 1', ['x']);
  await assert.rejects(c.query('SELECT 1/0'), (e: Error & { code?: string }) => e.code === '22012');
  await assert.rejects(c.query('SELECT 1'), (e: Error & { code?: string }) => e.code === '25P02');
  await c.query('ROLLBACK');
  assert.equal((await c.query('SELECT note FROM counters WHERE id = 1')).rows[0].note, null);
  // A prepared statement that fails at Parse does not poison the name.
  await assert.rejects(c.query({ name: 'bad', text: 'SELEC 1' }), (e: Error & { code?: string }) => e.code === '42601');
  const ok = await c.query({ name: 'bad2', text: 'SELECT 2 AS two' });
  assert.equal(ok.rows[0].two, 2);
});

test('session pooling mode gives each client its own server connections', async (t) => {
  const s = await startTestCluster({ shards: 1, poolMode: 'session', poolSize: 3 });
  t.after(() => s.stop());
  const c1 = await s.client();
  const c2 = await s.client();
  const pid1 = (await c1.query('SELECT pg_backend_pid() AS p')).rows[0].p;
  await c2.query('SELECT 1');
  assert.equal((await c1.query('SELECT pg_backend_pid() AS p')).rows[0].p, pid1, 'same backend for the whole session');
  await c1.query('PREPARE q AS SELECT 42 AS v');
  assert.equal((await c1.query('EXECUTE q')).rows[0].v, 42, 'SQL PREPARE works in session mode');
  await c1.query('LISTEN somewhere');
});

test('SQL-level PREPARE and LISTEN are refused in transaction pooling with a hint', async () => {
  const c = await cluster.client();
  await assert.rejects(c.query('PREPARE q AS SELECT 1'), (e: Error & { code?: string; hint?: string }) => e.code === '0A000' && /protocol-level/.test(e.hint ?? ''));
  await assert.rejects(c.query('LISTEN x'), (e: Error & { code?: string }) => e.code === '0A000');
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'the session goes on');
});

test('pg.Pool with many short transactions stays correct under contention for 5 servers', async () => {
  const pool = new pg.Pool({ connectionString: cluster.url, max: 40 });
  try {
    const results = await Promise.all(Array.from({ length: 400 }, async (_, i) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await c.query('SELECT n FROM counters WHERE id = $1 FOR UPDATE', [(i % 200) + 1]);
        await c.query('UPDATE counters SET n = $2 WHERE id = $1', [(i % 200) + 1, r.rows[0].n + 1]);
        await c.query('COMMIT');
        return 1;
      } finally {
        c.release();
      }
    }));
    assert.equal(results.length, 400);
    const sum = await pool.query('SELECT sum(n)::int AS s FROM counters');
    assert.equal(sum.rows.reduce((a, r) => a + r.s, 0), 50 * 20 + 400);
  } finally {
    await pool.end();
  }
});
