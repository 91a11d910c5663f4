// Routing through the proxy against real shards: sharded tables, key routing, DDL, unsharded tables, admin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { hashKey } from '../../config/hash.js';

const exec = promisify(execFile);
let cluster: TestCluster;
let app: pg.Client;
let admin: pg.Client;

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  app = await cluster.client();
  admin = await cluster.admin();
});
after(async () => {
  await cluster?.stop();
});

/** The shard that owns `key` according to the catalog's partition map (computed independently). */
function ownerOf(key: bigint | string, keyType: 'int8' | 'text' | 'uuid' = 'int8'): number {
  const h = hashKey(keyType, key);
  const t = cluster.proxy.server.routingTable();
  const ks = t.keyspaces.find((k) => k.family === (keyType === 'int8' ? 'int' : keyType))!;
  return t.partitions.find((p) => p.keyspaceId === ks.id && p.lo <= h && h < p.hi)!.shardId;
}

test('DDL goes to every shard and SHARD TABLE declares the table', async () => {
  await app.query('CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance int NOT NULL DEFAULT 0)');
  for (const i of [0, 1]) {
    const s = await cluster.shard(i);
    const r = await s.query("SELECT to_regclass('accounts') IS NOT NULL AS ok");
    assert.equal(r.rows[0].ok, true, `table exists on shard ${i}`);
  }
  const r = await admin.query('SHARD TABLE accounts BY (id)');
  assert.equal(r.command, 'SHARD');
  const tables = await admin.query('SHOW TABLES');
  assert.deepEqual(tables.rows.map((t) => [t.name, t.kind, t.key_column, t.key_type]), [['accounts', 'sharded', 'id', 'int8']]);
  const parts = await admin.query('SHOW PARTITIONS');
  assert.equal(parts.rows.length, 8, 'default 8 partitions');
  assert.deepEqual([...new Set(parts.rows.map((p) => p.shard))].sort(), ['0', '1'], 'spread over both shards');
  assert.equal(parts.rows[0].lo, '-9223372036854775808');
  assert.equal(parts.rows.at(-1).hi, '9223372036854775808');
  assert.match(parts.rows[0].tables, /accounts/);
});

test('DDL that one shard refuses changes no shard; CONCURRENTLY runs outside a transaction as before', async () => {
  // The table already exists on shard 1 only: CREATE TABLE fails there and must not stay on shard 0.
  await (await cluster.shard(1)).query('CREATE TABLE ddl_half (id int)');
  await assert.rejects(app.query('CREATE TABLE ddl_half (id int, v text)'), (err: { code?: string }) => err.code === '42P07');
  assert.equal((await (await cluster.shard(0)).query("SELECT to_regclass('ddl_half') IS NULL AS absent")).rows[0].absent, true, 'rolled back on shard 0');
  await (await cluster.shard(1)).query('DROP TABLE ddl_half');
  await app.query('CREATE TABLE ddl_half (id int, v text)');
  // Statements Postgres refuses inside a transaction block still run: each shard autocommits them.
  await app.query('CREATE INDEX CONCURRENTLY ddl_half_v ON ddl_half (v)');
  for (const i of [0, 1]) {
    const r = await (await cluster.shard(i)).query("SELECT to_regclass('ddl_half_v') IS NOT NULL AS ok");
    assert.equal(r.rows[0].ok, true, `index on shard ${i}`);
  }
  await app.query('DROP INDEX CONCURRENTLY ddl_half_v');
  await app.query('DROP TABLE ddl_half');
  // The session is clean afterwards: a new transaction works normally.
  await app.query('BEGIN');
  await app.query('SELECT 1');
  await app.query('COMMIT');
});

test('10,000 rows inserted through psql land on their owners; every key reads back', async (t) => {
  const values: string[] = [];
  for (let i = 1; i <= 10000; i++) values.push(`(${i}, 'owner-${i}', ${i % 100})`);
  let viaPsql = false;
  try {
    const file = join(mkdtempSync(join(tmpdir(), 'pgtide-psql-')), 'insert.sql');
    writeFileSync(file, `INSERT INTO accounts (id, owner, balance) VALUES ${values.join(',\n')};\n`);
    await exec('psql', [cluster.url, '-v', 'ON_ERROR_STOP=1', '-q', '-f', file]);
    viaPsql = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    t.diagnostic('psql is not installed: inserting with node-postgres instead');
    await app.query(`INSERT INTO accounts (id, owner, balance) VALUES ${values.join(',')}`);
  }
  t.diagnostic(`inserted via ${viaPsql ? 'psql' : 'node-postgres'}`);
  const counts: number[] = [];
  for (const i of [0, 1]) {
    const s = await cluster.shard(i);
    const r = await s.query('SELECT id FROM accounts');
    counts.push(r.rowCount!);
    for (const row of r.rows) assert.equal(ownerOf(BigInt(row.id)), i, `key ${row.id} is on the shard that owns it`);
  }
  assert.equal(counts[0]! + counts[1]!, 10000);
  assert.ok(counts[0]! > 3000 && counts[1]! > 3000, `rows spread over both shards: ${counts}`);
  for (const id of [1, 2, 77, 5000, 9999, 10000]) {
    const r = await app.query('SELECT owner, balance FROM accounts WHERE id = $1', [id]);
    assert.deepEqual(r.rows, [{ owner: `owner-${id}`, balance: id % 100 }]);
    const lit = await app.query(`SELECT owner FROM accounts WHERE id = ${id}`);
    assert.equal(lit.rows[0].owner, `owner-${id}`);
  }
  if (viaPsql) {
    const { stdout } = await exec('psql', [cluster.url, '-At', '-c', 'SELECT owner FROM accounts WHERE id = 4242']);
    assert.equal(stdout.trim(), 'owner-4242');
  }
});

test('UPDATE and DELETE by key touch only the owner; IN lists and ANY gather from several shards', async () => {
  const up = await app.query('UPDATE accounts SET balance = balance + 1000 WHERE id = 42 RETURNING balance');
  assert.deepEqual(up.rows, [{ balance: 1042 }]);
  const owner = ownerOf(42n);
  const direct = await (await cluster.shard(owner)).query('SELECT balance FROM accounts WHERE id = 42');
  assert.equal(direct.rows[0].balance, 1042);
  const keys = [3, 4, 5, 6, 7, 8];
  assert.ok(new Set(keys.map((k) => ownerOf(BigInt(k)))).size === 2, 'the keys span both shards');
  const inList = await app.query(`SELECT id FROM accounts WHERE id IN (${keys.join(',')}) ORDER BY id`);
  assert.deepEqual(inList.rows.map((r) => Number(r.id)).sort((a, b) => a - b), keys);
  const anyArr = await app.query('SELECT id FROM accounts WHERE id = ANY($1::bigint[])', [keys]);
  assert.deepEqual(anyArr.rows.map((r) => Number(r.id)).sort((a, b) => a - b), keys);
  const del = await app.query('DELETE FROM accounts WHERE id = 9999');
  assert.equal(del.rowCount, 1);
  const gone = await app.query('SELECT 1 FROM accounts WHERE id = 9999');
  assert.equal(gone.rowCount, 0);
});

test('a read without a key goes to every shard and concatenates rows', async () => {
  const r = await app.query('SELECT id FROM accounts WHERE balance = 7');
  // balance 7 ↔ id % 100 = 7, ids 7..9907 (100 rows; 9999 was deleted and has balance 99)
  assert.equal(r.rowCount, 100);
  assert.equal(r.command, 'SELECT');
  const route = await admin.query('EXPLAIN ROUTE SELECT id FROM accounts WHERE balance = 7');
  assert.match(route.rows[0].route, /scatter/);
  assert.equal(route.rows[0].shards, '0, 1');
});

test('multi-row INSERT is split per shard and reports the total', async () => {
  const r = await app.query("INSERT INTO accounts (id, owner) VALUES (20001, 'a'), (20002, 'b'), (20003, 'c'), (20004, 'd'), (20005, 'e')");
  assert.equal(r.rowCount, 5);
  for (const id of [20001, 20002, 20003, 20004, 20005]) {
    const s = await cluster.shard(ownerOf(BigInt(id)));
    assert.equal((await s.query('SELECT count(*)::int AS n FROM accounts WHERE id = $1', [id])).rows[0].n, 1);
  }
});

test('tables sharded by keys of the same type share the key space: same key, same shard', async () => {
  await app.query('CREATE TABLE orders (order_id bigserial, account_id bigint NOT NULL, amount int)');
  await admin.query('SHARD TABLE orders BY (account_id)');
  const tables = await admin.query('SHOW TABLES');
  const ks = tables.rows.filter((t) => t.name === 'accounts' || t.name === 'orders').map((t) => t.keyspace);
  assert.equal(ks[0], ks[1]);
  for (const id of [11, 12, 13, 14]) await app.query('INSERT INTO orders (account_id, amount) VALUES ($1, 1)', [id]);
  // A join on the key stays on one shard.
  const j = await app.query('SELECT a.owner, o.amount FROM accounts a JOIN orders o ON o.account_id = a.id WHERE a.id = 12');
  assert.deepEqual(j.rows, [{ owner: 'owner-12', amount: 1 }]);
  const s = await cluster.shard(ownerOf(12n));
  assert.equal((await s.query('SELECT count(*)::int AS n FROM orders WHERE account_id = 12')).rows[0].n, 1);
});

test('text and uuid keys route by Postgres hashing', async () => {
  await app.query('CREATE TABLE users_by_name (name text PRIMARY KEY, n int)');
  await app.query('CREATE TABLE sessions (sid uuid PRIMARY KEY, n int)');
  await admin.query('SHARD TABLE users_by_name BY (name)');
  await admin.query('SHARD TABLE sessions BY (sid)');
  const names = Array.from({ length: 40 }, (_, i) => `user-${i}`);
  for (const n of names) await app.query('INSERT INTO users_by_name (name, n) VALUES ($1, 1)', [n]);
  const uuids = Array.from({ length: 40 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  for (const u of uuids) await app.query(`INSERT INTO sessions (sid, n) VALUES ('${u}', 1)`);
  for (const i of [0, 1]) {
    const s = await cluster.shard(i);
    for (const r of (await s.query('SELECT name FROM users_by_name')).rows) assert.equal(ownerOf(r.name, 'text'), i);
    for (const r of (await s.query('SELECT sid::text FROM sessions')).rows) assert.equal(ownerOf(r.sid, 'uuid'), i);
  }
  assert.equal((await app.query('SELECT n FROM users_by_name WHERE name = $1', ['user-17'])).rows[0].n, 1);
});

test('tables that are neither sharded nor reference live on shard 0', async () => {
  await app.query('CREATE TABLE settings (k text PRIMARY KEY, v text)');
  await app.query("INSERT INTO settings VALUES ('a', '1'), ('b', '2')");
  assert.equal((await (await cluster.shard(0)).query('SELECT count(*)::int AS n FROM settings')).rows[0].n, 2);
  assert.equal((await (await cluster.shard(1)).query('SELECT count(*)::int AS n FROM settings')).rows[0].n, 0);
  assert.equal((await app.query("SELECT v FROM settings WHERE k = 'b'")).rows[0].v, '2');
});

test('a transaction is pinned to the shard of its first statement; another shard gets 0A000', async () => {
  const a = 3n, b = [4n, 5n, 6n, 7n, 8n].find((k) => ownerOf(k) !== ownerOf(3n))!;
  await app.query('BEGIN');
  await app.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [a]);
  await assert.rejects(app.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [b]), (err: Error & { code?: string }) => {
    assert.equal(err.code, '0A000');
    assert.match(err.message, /transaction lives on shard/);
    return true;
  });
  await assert.rejects(app.query('SELECT 1'), (err: Error & { code?: string }) => err.code === '25P02');
  await app.query('ROLLBACK');
  // Nothing of the transaction was committed.
  const r = await app.query('SELECT balance FROM accounts WHERE id = $1', [a]);
  assert.equal(r.rows[0].balance, 3);
  // A transaction on one shard commits.
  await app.query('BEGIN');
  await app.query('UPDATE accounts SET balance = 500 WHERE id = $1', [a]);
  await app.query('COMMIT');
  assert.equal((await app.query('SELECT balance FROM accounts WHERE id = $1', [a])).rows[0].balance, 500);
});

test('SHARD TABLE refuses a table with rows, an unknown table, a bad key type and junk', async () => {
  await app.query('CREATE TABLE legacy (id int)');
  await app.query('INSERT INTO legacy VALUES (1)');
  await assert.rejects(admin.query('SHARD TABLE legacy BY (id)'), (e: Error & { code?: string }) => e.code === '0A000' && /already holds rows/.test(e.message));
  await assert.rejects(admin.query('SHARD TABLE nope BY (id)'), (e: Error & { code?: string }) => e.code === '42P01');
  await app.query('CREATE TABLE floaty (x float8)');
  await assert.rejects(admin.query('SHARD TABLE floaty BY (x)'), (e: Error & { code?: string }) => e.code === '42804');
  await assert.rejects(admin.query('SHARD TABLE floaty BY (missing)'), (e: Error & { code?: string }) => e.code === '42703');
  await assert.rejects(admin.query('SHARD TABLE accounts BY (id) PARTITIONS zero'), (e: Error & { code?: string }) => e.code === '42601' || e.code === '22023');
  await assert.rejects(admin.query('FROBNICATE EVERYTHING'), (e: Error & { code?: string }) => e.code === '42601');
  // Nothing changed.
  const tables = await admin.query('SHOW TABLES');
  assert.ok(!tables.rows.some((t) => ['legacy', 'nope', 'floaty'].includes(t.name)));
});

test('admin SHOW commands answer with rows', async () => {
  const shards = await admin.query('SHOW SHARDS');
  assert.deepEqual(shards.rows.map((s) => s.id), ['0', '1']);
  assert.match(shards.rows[0].url, /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/app$/);
  for (const cmd of ['SHOW CLIENTS', 'SHOW SERVERS', 'SHOW POOLS', 'SHOW STATS', 'SHOW VERSION', 'SHOW HELP']) {
    const r = await admin.query(cmd);
    assert.ok(r.rows.length > 0, `${cmd} returns rows`);
  }
  const stats = await admin.query('SHOW STATS');
  const queries = Number(stats.rows.find((r) => r.name === 'queries').value);
  assert.ok(queries > 10);
  const clients = await admin.query('SHOW CLIENTS');
  assert.ok(clients.rows.some((c) => c.user === 'app'));
  const reload = await admin.query('RELOAD');
  assert.equal(reload.command, 'RELOAD');
  await assert.rejects(admin.query('SELECT 1'), (e: Error & { code?: string; hint?: string }) => e.code === '42601' && /application database/.test(e.hint ?? ''));
});

test('a reference table is written to every shard, reports its own row count, and reads from one', async () => {
  await app.query('CREATE TABLE countries (code text PRIMARY KEY, name text)');
  await admin.query('REFERENCE TABLE countries');
  const ins = await app.query("INSERT INTO countries (code, name) VALUES ('fr', 'France'), ('jp', 'Japan')");
  assert.equal(ins.rowCount, 2, 'the count of one copy, not the sum over shards');
  for (const i of [0, 1]) {
    assert.equal((await (await cluster.shard(i)).query('SELECT count(*)::int AS n FROM countries')).rows[0].n, 2, `shard ${i} has a full copy`);
  }
  const r = await app.query("SELECT name FROM countries WHERE code = 'jp'");
  assert.deepEqual(r.rows, [{ name: 'Japan' }]);
});
