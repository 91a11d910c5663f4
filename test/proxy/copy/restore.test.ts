// pg_restore (custom format) and plain SQL via psql through the proxy into an empty cluster, sharded on the way in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../../helpers/cluster.js';

const run = promisify(execFile);
const missing = ['pg_dump', 'pg_restore', 'psql'].find((t) => spawnSync(t, ['--version']).status !== 0);
const TABLES = ['orders', 'docs', 'countries', 'notes'];

let source: pg.Client;
let sourceUrl: string;
let dir: string;
let custom: TestCluster;
let plain: TestCluster;

before(async () => {
  if (missing) return;
  // custom allows transactions across shards: pg_dump reads every table in one snapshot transaction.
  [custom, plain] = await Promise.all([startTestCluster({ shards: 2, poolSize: 3, twoPhaseCommit: true }), startTestCluster({ shards: 2, poolSize: 3 })]);
  // The original: one plain Postgres database (a migration into pgtide).
  await (await custom.catalog.client()).query('CREATE DATABASE src');
  sourceUrl = custom.catalog.url('src');
  source = new pg.Client({ connectionString: sourceUrl });
  await source.connect();
  await source.query(`
    CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2), placed date);
    CREATE TABLE docs (k text PRIMARY KEY, body text);
    CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
    CREATE TABLE notes (id int PRIMARY KEY, txt text);
    CREATE INDEX orders_customer ON orders (customer);
    COMMENT ON TABLE notes IS 'free-form notes';
    GRANT SELECT ON notes TO PUBLIC;
    INSERT INTO orders (customer, total, placed) SELECT 'c' || (i % 97), i * 1.25, date '2024-01-01' + (i % 300) FROM generate_series(1, 3000) i;
    INSERT INTO docs SELECT 'doc-' || i, E'line one\\nline "two", \\\\ tab\\t' || i FROM generate_series(1, 500) i;
    INSERT INTO docs VALUES ('null-body', NULL);
    INSERT INTO countries VALUES ('fr', 'France'), ('de', 'Germany'), ('jp', 'Japan');
    INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 50) i;
  `);
  dir = mkdtempSync(join(tmpdir(), 'pgtide-restore-'));
});
after(async () => {
  await source?.end().catch(() => {});
  await Promise.allSettled([custom?.stop(), plain?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Declare the tables on the new cluster between the schema and the data. */
async function declare(cluster: TestCluster): Promise<void> {
  const admin = await cluster.admin();
  await admin.query('SHARD TABLE orders BY (id)');
  await admin.query('SHARD TABLE docs BY (k)');
  await admin.query('REFERENCE TABLE countries');
}

/** Row count and an order-independent checksum of every row's text. */
async function fingerprint(c: pg.Client, table: string): Promise<{ rows: number; sum: string }> {
  const r = await c.query({ text: `SELECT t::text AS r FROM ${table} t`, rowMode: 'array' });
  const lines = r.rows.map((x) => String(x[0])).sort();
  return { rows: lines.length, sum: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

async function check(cluster: TestCluster): Promise<void> {
  const app = await cluster.client();
  for (const t of TABLES) assert.deepEqual(await fingerprint(app, t), await fingerprint(source, t), `table ${t}`);
  const s0 = await cluster.shard(0);
  const s1 = await cluster.shard(1);
  for (const t of ['orders', 'docs']) {
    const a = Number((await s0.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
    const b = Number((await s1.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
    assert.ok(a > 0 && b > 0, `${t} has rows on both shards: ${a}, ${b}`);
  }
  assert.equal(Number((await s1.query('SELECT count(*) AS n FROM countries')).rows[0].n), 3);
  // Same keys, same rows: a keyed read finds its row.
  assert.deepEqual((await app.query('SELECT customer FROM orders WHERE id = 1234')).rows, [{ customer: 'c70' }]);
  assert.equal((await app.query("SELECT body FROM docs WHERE k = 'null-body'")).rows[0].body, null);
  // Post-data reached every shard: the index, the primary key, the comment.
  for (const s of [s0, s1]) {
    assert.equal((await s.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname IN ('orders_customer', 'orders_pkey')")).rows[0].n, 2);
  }
  assert.equal((await s0.query("SELECT obj_description('notes'::regclass) AS d")).rows[0].d, 'free-form notes');
  // The dump's setval reached every shard: each shard's sequence hands out its own residue, above
  // every restored id (one shard's sequence left at its start would collide with restored rows).
  const maxId = Number((await source.query('SELECT max(id) AS m FROM orders')).rows[0].m);
  for (const [i, s] of [s0, s1].entries()) {
    const next = Number((await s.query("SELECT nextval('orders_id_seq') AS n")).rows[0].n);
    assert.ok(next > maxId, `shard ${i}: next id ${next} is above the restored ${maxId}`);
    assert.equal(next % 64, (i + 1) % 64, `shard ${i}: next id ${next} keeps the shard's residue`);
  }
}

test('pg_restore of a custom-format dump through the proxy: pre-data, SHARD TABLE, data, post-data', { skip: missing ? `${missing} not installed` : false }, async () => {
  const file = join(dir, 'db.dump');
  await run('pg_dump', ['-d', sourceUrl, '-Fc', '-f', file]);
  await run('pg_restore', ['--section=pre-data', '-d', custom.url, '--exit-on-error', file]);
  await declare(custom);
  await run('pg_restore', ['--section=data', '-d', custom.url, '--exit-on-error', file]);
  await run('pg_restore', ['--section=post-data', '-d', custom.url, '--exit-on-error', file]);
  await check(custom);
});

test('plain SQL dump loaded with psql through the proxy', { skip: missing ? `${missing} not installed` : false }, async () => {
  const files: string[] = [];
  for (const section of ['pre-data', 'data', 'post-data']) {
    const f = join(dir, `${section}.sql`);
    await run('pg_dump', ['-d', sourceUrl, '-Fp', `--section=${section}`, '-f', f]);
    files.push(f);
  }
  const psql = (f: string) => run('psql', [plain.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', f]);
  await psql(files[0]!);
  await declare(plain);
  await psql(files[1]!);
  await psql(files[2]!);
  await check(plain);
});

test('pg_dump *through the proxy* of a sharded cluster restores through the proxy into another empty cluster', { skip: missing ? `${missing} not installed` : false }, async (t) => {
  // Needs the first test's restored, sharded data in `custom`.
  const third = await startTestCluster({ shards: 2, poolSize: 3 });
  t.after(() => third.stop());
  const file = join(dir, 'through-proxy.dump');
  await run('pg_dump', ['-d', custom.url, '-Fc', '-f', file]);
  await run('pg_restore', ['--section=pre-data', '-d', third.url, '--exit-on-error', file]);
  await declare(third);
  await run('pg_restore', ['--section=data', '-d', third.url, '--exit-on-error', file]);
  await run('pg_restore', ['--section=post-data', '-d', third.url, '--exit-on-error', file]);
  await check(third);
});
