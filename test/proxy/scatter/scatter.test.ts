// Scatter-gather acceptance: every supported cross-shard query shape gives what one unsharded Postgres gives on the same data; the rest is 0A000.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../../helpers/cluster.js';
import { startTestServer, type TestServer } from '../../helpers/postgres.js';
import { makeRng } from '../../../predictor/series.js';

let cluster: TestCluster;
let reference: TestServer;
let app: pg.Client;
let ref: pg.Client;
let admin: pg.Client;

/** Seeded PRNG: the data is random but the same on every run. */
const rng = makeRng;

const ITEMS = 1500;
const ORDERS = 3000;
const IN_KEYS = Array.from({ length: 40 }, (_, i) => i * 37 + 5);

const SCHEMA = [
  `CREATE TABLE items (id bigint PRIMARY KEY, grp int NOT NULL, cat text, name text, score int, price numeric(10,2),
     ratio float8, flag bool, created date, nullable int, region text)`,
  'CREATE TABLE orders (oid bigint, item_id bigint NOT NULL, qty int, amount numeric)',
  'CREATE TABLE regions (code text PRIMARY KEY, label text)',
];

function lit(v: unknown): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return `'${v.replaceAll("'", "''")}'`;
  return String(v);
}

function data(): string[] {
  const r = rng(20240607);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const names = ['alpha', 'Beta', 'gamma', 'delta', 'Épsilon', 'zeta', 'éta', 'theta', 'Ωmega', 'a b', 'a', 'ab', 'b', '', 'zz', 'x😀'];
  const cats = ['a', 'b', 'c', 'd', 'e', null];
  const regions = ['eu', 'us', 'ap', 'xx'];
  const items: string[] = [];
  for (let id = 1; id <= ITEMS; id++) {
    const row = [
      id, Math.floor(r() * 12), pick(cats), r() < 0.05 ? null : `${pick(names)}${r() < 0.5 ? ` ${Math.floor(r() * 50)}` : ''}`,
      r() < 0.03 ? null : Math.floor(r() * 100), r() < 0.03 ? null : (Math.floor(r() * 100000) / 100).toFixed(2),
      // Multiples of 1/4: float sums are exact, so the order of additions cannot change them.
      r() < 0.03 ? null : Math.floor(r() * 4000 - 2000) / 4, r() < 0.5, `2024-01-01`, r() < 0.4 ? null : Math.floor(r() * 30) - 10, pick(regions),
    ];
    const created = `'${new Date(Date.UTC(2023, 0, 1) + Math.floor(r() * 400) * 86400000).toISOString().slice(0, 10)}'`;
    items.push(`(${row.slice(0, 8).map(lit).join(', ')}, ${created}, ${lit(row[9])}, ${lit(row[10])})`);
  }
  const orders: string[] = [];
  for (let i = 1; i <= ORDERS; i++) {
    orders.push(`(${i}, ${1 + Math.floor(r() * ITEMS)}, ${1 + Math.floor(r() * 9)}, ${(Math.floor(r() * 1000000) / 1000).toFixed(3)})`);
  }
  return [
    `INSERT INTO items (id, grp, cat, name, score, price, ratio, flag, created, nullable, region) VALUES ${items.join(', ')}`,
    `INSERT INTO orders (oid, item_id, qty, amount) VALUES ${orders.join(', ')}`,
    "INSERT INTO regions (code, label) VALUES ('eu', 'Europe'), ('us', 'Americas'), ('ap', 'Asia')",
  ];
}

before(async () => {
  // One after the other: free ports are picked per server, and two starts at once can pick the same.
  cluster = await startTestCluster({ shards: 2 });
  reference = await startTestServer();
  app = await cluster.client();
  admin = await cluster.admin();
  ref = await reference.client();
  for (const ddl of SCHEMA) {
    await app.query(ddl);
    await ref.query(ddl);
  }
  await admin.query('SHARD TABLE items BY (id)');
  await admin.query('SHARD TABLE orders BY (item_id)');
  await admin.query('REFERENCE TABLE regions');
  for (const ins of data()) {
    await app.query(ins);
    await ref.query(ins);
  }
  // Both shards hold rows, so every shape really merges.
  for (const i of [0, 1]) {
    const n = Number((await (await cluster.shard(i)).query('SELECT count(*) AS n FROM items')).rows[0].n);
    assert.ok(n > ITEMS / 4, `shard ${i} holds ${n} items`);
  }
});
after(async () => {
  await Promise.allSettled([cluster?.stop(), reference?.stop()]);
});

/** [sql, ordered]: ordered means the ORDER BY is total, so row order is compared too. */
const SHAPES: [string, boolean][] = [
  ['SELECT count(*) FROM items', true],
  ['SELECT count(*)::int AS n FROM items WHERE score > 50', true],
  ['SELECT sum(score), min(score), max(score), avg(score) FROM items', true],
  ['SELECT sum(price), avg(price), min(price), max(price) FROM items', true],
  ['SELECT sum(ratio), avg(ratio), min(ratio), max(ratio) FROM items', true],
  ['SELECT avg(nullable), count(nullable), sum(nullable), count(*) FROM items', true],
  ['SELECT count(DISTINCT id), avg(DISTINCT id) FROM items', true],
  ['SELECT sum(score)::bigint AS s, count(*)::int FROM items WHERE flag', true],
  ['SELECT max(name), min(name) FROM items', true],
  ['SELECT count(*) FROM items HAVING count(*) > 0', true],
  ['SELECT avg(score) FROM items WHERE id < 0', true],
  ['SELECT grp, count(*) FROM items GROUP BY grp ORDER BY grp', true],
  ['SELECT grp, avg(price) FROM items GROUP BY grp ORDER BY avg(price) DESC, grp', true],
  ['SELECT cat, sum(score) AS total FROM items GROUP BY cat HAVING sum(score) > 1000 ORDER BY total DESC', true],
  ['SELECT cat, count(*) FROM items GROUP BY cat HAVING count(*) >= 10 AND max(score) < 100 OR min(score) = 0 ORDER BY 1 NULLS FIRST', true],
  ['SELECT grp, cat, count(*), max(name) FROM items GROUP BY grp, cat ORDER BY grp, cat LIMIT 7 OFFSET 3', true],
  ['SELECT flag, count(*), avg(ratio) FROM items GROUP BY flag ORDER BY flag', true],
  ['SELECT created, count(*) FROM items GROUP BY created ORDER BY count(*) DESC, created LIMIT 5', true],
  ['SELECT grp FROM items GROUP BY grp HAVING NOT (avg(score) < 48) ORDER BY grp', true],
  ['SELECT count(*) FROM items GROUP BY cat', false],
  ['SELECT cat AS c, count(*) AS n FROM items GROUP BY c ORDER BY n DESC, c', true],
  ['SELECT grp + 1 AS g1, count(*) FROM items GROUP BY grp ORDER BY 1', true],
  ['SELECT grp, sum(price) FROM items GROUP BY 1 HAVING sum(price) IS NOT NULL ORDER BY 2 DESC LIMIT 4', true],
  ['SELECT cat, min(created), max(created) FROM items GROUP BY cat ORDER BY cat', true],
  ["SELECT region, count(*) FROM items WHERE cat <> 'a' GROUP BY region HAVING region <> 'xx' ORDER BY region DESC", true],
  ['SELECT DISTINCT cat FROM items ORDER BY cat', true],
  ['SELECT DISTINCT grp, flag FROM items', false],
  ['SELECT DISTINCT grp FROM items ORDER BY grp DESC LIMIT 3', true],
  ['SELECT DISTINCT price FROM items WHERE price < 20 ORDER BY price', true],
  ['SELECT DISTINCT cat, count(*) FROM items GROUP BY cat, grp', false],
  ['SELECT id, name FROM items ORDER BY id LIMIT 10', true],
  ['SELECT id, score FROM items ORDER BY score DESC, id LIMIT 20 OFFSET 15', true],
  ['SELECT id FROM items ORDER BY nullable NULLS FIRST, id LIMIT 30', true],
  ['SELECT id, nullable FROM items ORDER BY nullable DESC NULLS LAST, id LIMIT 30', true],
  ['SELECT id, price FROM items ORDER BY price, id LIMIT 25', true],
  ['SELECT id, ratio FROM items ORDER BY ratio DESC, id LIMIT 25', true],
  ['SELECT id, name FROM items ORDER BY name, id LIMIT 40', true],
  ['SELECT id, name FROM items ORDER BY name DESC NULLS FIRST, id DESC LIMIT 10', true],
  ['SELECT name FROM items ORDER BY created DESC, id', true],
  ['SELECT * FROM items ORDER BY id LIMIT 5 OFFSET 100', true],
  ['SELECT id FROM items ORDER BY id FETCH FIRST 5 ROWS ONLY', true],
  ["SELECT id, cat FROM items WHERE cat = 'b' ORDER BY id", true],
  ['SELECT id, name FROM items WHERE score BETWEEN 10 AND 20', false],
  ['SELECT id FROM items LIMIT 0', true],
  ["SELECT count(*) FROM items WHERE name LIKE 'a%'", true],
  [`SELECT id, score FROM items WHERE id IN (${IN_KEYS.join(', ')}) ORDER BY score, id`, true],
  [`SELECT count(*), sum(score), avg(price) FROM items WHERE id IN (${IN_KEYS.join(', ')})`, true],
  ['SELECT item_id, count(*), sum(amount) FROM orders GROUP BY item_id ORDER BY sum(amount) DESC, item_id LIMIT 10', true],
  ['SELECT item_id, count(DISTINCT qty) FROM orders GROUP BY item_id HAVING count(*) > 2 ORDER BY item_id LIMIT 20', true],
  ['SELECT i.cat, sum(o.amount), avg(o.qty) FROM items i JOIN orders o ON o.item_id = i.id GROUP BY i.cat ORDER BY i.cat', true],
  ['SELECT i.id, i.name, o.qty FROM items i JOIN orders o ON o.item_id = i.id ORDER BY o.amount DESC, o.oid LIMIT 15', true],
  ['SELECT r.label, count(*) FROM items i JOIN regions r ON r.code = i.region GROUP BY r.label ORDER BY r.label', true],
  ['SELECT i.id, r.label FROM items i LEFT JOIN regions r ON r.code = i.region ORDER BY i.id LIMIT 50', true],
  ['SELECT grp, avg(ratio), sum(ratio) FROM items GROUP BY grp ORDER BY grp', true],
];

const UNSUPPORTED = [
  'SELECT count(DISTINCT cat) FROM items',
  'SELECT cat FROM items UNION SELECT cat FROM items',
  'SELECT sum(score) + 1 FROM items',
  "SELECT string_agg(name, ',') FROM items",
  'SELECT id, rank() OVER (ORDER BY score) FROM items',
  'WITH x AS (SELECT * FROM items) SELECT count(*) FROM x',
  'SELECT count(*) FROM (SELECT * FROM items ORDER BY id LIMIT 5) s',
  'SELECT DISTINCT ON (cat) cat, id FROM items ORDER BY cat, id',
  'SELECT cat FROM items GROUP BY ROLLUP (cat)',
  'SELECT cat FROM items GROUP BY cat HAVING count(*) BETWEEN 1 AND 5',
  'SELECT r.code, i.id FROM regions r LEFT JOIN items i ON i.region = r.code',
  'SELECT count(*) FILTER (WHERE flag) FROM items',
];

type Result = { fields: [string, number][]; rows: string[] };

async function run(c: pg.Client, sql: string, values?: unknown[]): Promise<Result> {
  const r = await c.query({ text: sql, values, rowMode: 'array' });
  return { fields: r.fields.map((f) => [f.name, f.dataTypeID]), rows: r.rows.map((row) => JSON.stringify(row)) };
}

test(`${SHAPES.length} supported shapes match one unsharded Postgres`, async () => {
  assert.ok(SHAPES.length >= 40);
  for (const [sql, ordered] of SHAPES) {
    const [got, want] = await Promise.all([run(app, sql), run(ref, sql)]);
    if (!ordered) {
      got.rows.sort();
      want.rows.sort();
    }
    assert.deepEqual(got.fields, want.fields, `columns of: ${sql}`);
    assert.deepEqual(got.rows, want.rows, `rows of: ${sql}`);
  }
});

test('the same shapes through the extended protocol (parameters, named statements)', async () => {
  const cases: [string, unknown[]][] = [
    ['SELECT grp, count(*), avg(price) FROM items WHERE score > $1 GROUP BY grp ORDER BY grp', [30]],
    ['SELECT id, name FROM items WHERE score < $1 ORDER BY name, id LIMIT 12', [40]],
    ['SELECT count(*) FROM items WHERE cat = $1', ['c']],
    ['SELECT DISTINCT cat FROM items WHERE grp = $1 ORDER BY cat', [3]],
    ['SELECT id FROM items WHERE id = ANY($1::bigint[]) ORDER BY id DESC', [IN_KEYS]],
  ];
  for (const [sql, values] of cases) {
    const [got, want] = await Promise.all([run(app, sql, values), run(ref, sql, values)]);
    assert.deepEqual(got, want, sql);
    // Named and reused: the second run finds the statement prepared on the shards.
    for (let i = 0; i < 2; i++) {
      const named = await app.query({ name: `scatter-${SHAPES.length}-${sql.length}`, text: sql, values, rowMode: 'array' });
      assert.deepEqual(named.rows.map((r) => JSON.stringify(r)), want.rows, `named: ${sql}`);
    }
  }
});

test(`${UNSUPPORTED.length} unsupported shapes are refused with 0A000 naming the construct`, async () => {
  for (const sql of UNSUPPORTED) {
    await assert.rejects(app.query(sql), (e: Error & { code?: string }) => {
      assert.equal(e.code, '0A000', `${sql}: ${e.message}`);
      assert.match(e.message, /not supported|cannot be merged|cross-shard/, sql);
      return true;
    });
  }
  await assert.rejects(app.query('SELECT id FROM items ORDER BY id LIMIT $1', [3]), { code: '0A000' });
  // The session still works after refusals.
  assert.equal((await app.query('SELECT count(*)::int AS n FROM items')).rows[0].n, ITEMS);
});

test('text under a collation that does not order by bytes is refused, not merged wrongly', async (t) => {
  const coll = (await ref.query("SELECT collname FROM pg_collation WHERE collname IN ('en_US', 'en_US.utf8', 'und-x-icu') ORDER BY 1 LIMIT 1")).rows[0]?.collname;
  if (!coll) {
    t.skip('no linguistic collation installed on this server');
    return;
  }
  await assert.rejects(app.query(`SELECT name FROM items ORDER BY name COLLATE "${coll}" LIMIT 5`), { code: '0A000' });
  await assert.rejects(app.query(`SELECT max(name COLLATE "${coll}") FROM items`), { code: '0A000' });
  // COLLATE "C" is always mergeable.
  const sql = 'SELECT name FROM items WHERE name IS NOT NULL ORDER BY name COLLATE "C", id LIMIT 20';
  assert.deepEqual(await run(app, sql), await run(ref, sql));
});

test('a shard failing mid-scatter gives the client an error, not partial rows', async () => {
  // id 1 lives on one shard only: that shard fails, the other answers.
  await assert.rejects(app.query('SELECT id, 10 / (id - 1) FROM items ORDER BY id'), { code: '22012' });
  await assert.rejects(app.query('SELECT grp, sum(10 / (id - 1)) FROM items GROUP BY grp'), { code: '22012' });
  assert.equal((await app.query('SELECT count(*)::int AS n FROM items')).rows[0].n, ITEMS);
});

test('EXPLAIN ROUTE shows the merge steps', async () => {
  const r = await admin.query('EXPLAIN ROUTE SELECT cat, avg(score) FROM items GROUP BY cat HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 3');
  assert.match(r.rows[0].route, /scatter read \(merged\)/);
  assert.match(r.rows[0].detail, /re-aggregates/);
  assert.match(r.rows[0].detail, /HAVING/);
  const refused = await admin.query('EXPLAIN ROUTE SELECT count(DISTINCT cat) FROM items');
  assert.match(refused.rows[0].detail, /0A000/);
});
