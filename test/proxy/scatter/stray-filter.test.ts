// The stray filter's rewrites, run on a real server: a shard holding rows of a range it does not
// own, running the rewritten statement, answers exactly what the original statement answers on a
// shard holding only the rows it owns. Plus the RoutingIndex side: which ranges count as strays.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { hashKey } from '../../../config/hash.js';
import { RoutingIndex } from '../../../config/routing.js';
import { HASH_END, HASH_MIN, type RoutingTable } from '../../../config/types.js';
import { Router } from '../../../proxy/router/index.js';
import { filterStrays, StrayFilterCache } from '../../../proxy/scatter/index.js';
import { startTestServer, type TestServer } from '../../helpers/postgres.js';

const MID = 0n;
/** Two partitions: [min, 0) on shard 0, [0, 2^63) on shard 1; shard 1 holds a copy of [min, 0) (a move 0 → 1). */
function table(strays: RoutingTable['strays'], partitions?: RoutingTable['partitions']): RoutingTable {
  return {
    version: 7,
    shards: [{ id: 0, url: 'postgres://x/a', state: 'active' }, { id: 1, url: 'postgres://y/a', state: 'active' }],
    keyspaces: [{ id: 1, name: 'int', family: 'int' }],
    tables: [
      { name: 'accounts', kind: 'sharded', keyColumn: 'id', keyType: 'int8', keyspaceId: 1 },
      { name: 'items', kind: 'sharded', keyColumn: 'account_id', keyType: 'int8', keyspaceId: 1 },
      { name: 'Odd Name', kind: 'sharded', keyColumn: 'k', keyType: 'int4', keyspaceId: 1 },
      { name: 'tags', kind: 'reference' },
    ],
    partitions: partitions ?? [
      { id: 1, keyspaceId: 1, lo: HASH_MIN, hi: MID, shardId: 0, state: 'moving' },
      { id: 2, keyspaceId: 1, lo: MID, hi: HASH_END, shardId: 1, state: 'active' },
    ],
    ...(strays ? { strays } : {}),
  };
}
const MOVING = table([{ jobId: 1, keyspaceId: 1, lo: HASH_MIN, hi: MID, shardId: 0 }, { jobId: 1, keyspaceId: 1, lo: HASH_MIN, hi: MID, shardId: 1 }]);

let server: TestServer;
let full: pg.Client;
let owned: pg.Client;

before(async () => {
  await Router.init();
  server = await startTestServer();
  const admin = await server.client();
  await admin.query('CREATE DATABASE full_copy');
  await admin.query('CREATE DATABASE owned_only');
  full = await server.client('full_copy');
  owned = await server.client('owned_only');
  for (const c of [full, owned]) {
    await c.query('CREATE TABLE accounts (id bigint PRIMARY KEY, grp int NOT NULL, v int NOT NULL)');
    await c.query('CREATE TABLE items (account_id bigint NOT NULL, n int NOT NULL)');
    await c.query('CREATE TABLE "Odd Name" (k int, w int)');
    await c.query('CREATE TABLE tags (grp int PRIMARY KEY, label text NOT NULL)');
    await c.query("INSERT INTO tags SELECT g, 'g' || g FROM generate_series(0, 4) g");
  }
  // Shard 1's point of view: it owns [0, 2^63); `full_copy` also holds the copy of [min, 0).
  for (let id = 1; id <= 300; id++) {
    const mine = hashKey('int8', id) >= MID;
    for (const c of mine ? [full, owned] : [full]) {
      await c.query('INSERT INTO accounts VALUES ($1, $2, $3)', [id, id % 5, (id * 7) % 101]);
      await c.query('INSERT INTO items VALUES ($1, 1), ($1, 2)', [id]);
      await c.query('INSERT INTO "Odd Name" VALUES ($1, $1)', [id]);
    }
  }
  // A NULL key belongs to no range: it is kept.
  for (const c of [full, owned]) await c.query('INSERT INTO "Odd Name" VALUES (NULL, -1)');
});

after(async () => {
  await server?.stop();
});

const STATEMENTS = [
  'SELECT count(*) AS n, sum(v) AS s FROM accounts',
  'SELECT id, v FROM accounts ORDER BY id DESC LIMIT 9',
  'SELECT a.grp, count(*) FROM public.accounts AS a JOIN items i ON i.account_id = a.id GROUP BY a.grp ORDER BY 1',
  'SELECT count(*) FROM ONLY accounts x WHERE x.id IN (SELECT account_id FROM items WHERE n = 2)',
  'SELECT t.label, count(*) FROM accounts a JOIN tags t ON t.grp = a.grp GROUP BY 1 ORDER BY 1',
  'WITH big AS (SELECT * FROM accounts WHERE v > 50) SELECT count(*) FROM big',
  'WITH accounts AS (SELECT 1 AS id) SELECT count(*) FROM accounts',
  'SELECT count(*), sum(w) FROM "Odd Name"',
  'SELECT accounts.id FROM accounts WHERE accounts.v = 3 UNION ALL SELECT account_id FROM items WHERE n = 9 ORDER BY 1',
  'SELECT count(*) FROM accounts a, LATERAL (SELECT count(*) AS c FROM items i WHERE i.account_id = a.id) l WHERE l.c = 2',
  'SELECT id FROM accounts WHERE v = 7 ORDER BY id FOR UPDATE OF accounts',
  'SELECT count(*) FROM accounts WHERE EXISTS (SELECT 1 FROM items WHERE items.account_id = accounts.id)',
  'UPDATE accounts SET v = v + 1',
  'UPDATE accounts AS a SET v = v + 1 WHERE grp = 1 OR grp = 2 RETURNING a.id',
  'UPDATE accounts SET v = i.n FROM items i WHERE i.account_id = accounts.id AND i.n = 2 RETURNING accounts.id, v',
  'DELETE FROM accounts WHERE grp = 3 RETURNING id',
  'DELETE FROM items USING accounts WHERE accounts.id = items.account_id AND accounts.grp = 4',
  'DELETE FROM "Odd Name";',
  'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM accounts',
];

/** Rows of a result, sorted, as text (EXPLAIN: only the row counts it reports). */
function canon(r: pg.QueryResult): string[] {
  const rows = r.rows.map((x) => JSON.stringify(x));
  if (r.fields[0]?.name === 'QUERY PLAN') return [/actual rows=\d+/.exec(String(r.rows[0]['QUERY PLAN']))?.[0] ?? 'no rows'];
  return [r.command, String(r.rowCount), ...rows.sort()];
}

test('each rewritten statement answers on the shard with the copy what the original answers on a shard without it', async () => {
  const index = new RoutingIndex(MOVING);
  for (const sql of STATEMENTS) {
    const rewritten = filterStrays(sql, index, 1);
    await full.query('BEGIN');
    await owned.query('BEGIN');
    try {
      const naive = await full.query(sql);
      await full.query('ROLLBACK');
      await full.query('BEGIN');
      const got = await full.query(rewritten);
      const want = await owned.query(sql);
      assert.deepEqual(canon(got), canon(want), `${sql}\n→ ${rewritten}`);
      const touchesSharded = !sql.startsWith('WITH accounts');
      if (touchesSharded) assert.notDeepEqual(canon(naive), canon(want), `the copy changes the answer of ${sql} (else the case proves nothing)`);
    } finally {
      await full.query('ROLLBACK');
      await owned.query('ROLLBACK');
    }
  }
});

test('statements on shards without strays, on reference tables, and DDL are left alone', () => {
  const index = new RoutingIndex(MOVING);
  for (const sql of ['SELECT count(*) FROM tags', 'CREATE INDEX ON accounts (v)', "INSERT INTO accounts (id, grp, v) VALUES (1, 1, 1)", 'WITH accounts AS (SELECT 1) SELECT * FROM accounts']) {
    assert.equal(filterStrays(sql, index, 1), sql, sql);
  }
  // Shard 0 owns all of [min, 0): filtering it would hide its own rows.
  assert.equal(index.strayRanges(0), null);
  assert.equal(filterStrays('SELECT count(*) FROM accounts', index, 0), 'SELECT count(*) FROM accounts');
  const none = new RoutingIndex(table(undefined));
  assert.equal(none.hasStrays, false);
  const cache = new StrayFilterCache();
  assert.equal(cache.forShard('SELECT count(*) FROM accounts', none, 1), 'SELECT count(*) FROM accounts');
});

test('COPY … TO STDOUT of a sharded table becomes a filtered COPY (query), with its column list', () => {
  const index = new RoutingIndex(MOVING);
  const out = filterStrays('COPY public.accounts (id, v) TO STDOUT WITH (FORMAT csv)', index, 1);
  assert.match(out, /^COPY \(SELECT id, v FROM public\.accounts WHERE NOT COALESCE\(\(hashint8extended\(\("id"\)::int8, 0\) >= '-9223372036854775808'::int8 AND hashint8extended\(\("id"\)::int8, 0\) < '0'::int8\), false\)\) TO STDOUT WITH \(FORMAT csv\)$/);
  assert.equal(filterStrays('COPY accounts FROM STDIN', index, 1), 'COPY accounts FROM STDIN');
});

test('only the parts of a move\'s range that other shards own are strays (a partition split after the switch, half moved back)', () => {
  // The job moved [min, 0) from shard 0 to shard 1; since then [min, -2^62) went back to shard 0.
  const split = new RoutingIndex(table([{ jobId: 1, keyspaceId: 1, lo: HASH_MIN, hi: MID, shardId: 0 }, { jobId: 1, keyspaceId: 1, lo: HASH_MIN, hi: MID, shardId: 1 }], [
    { id: 1, keyspaceId: 1, lo: HASH_MIN, hi: -(2n ** 62n), shardId: 0, state: 'active' },
    { id: 3, keyspaceId: 1, lo: -(2n ** 62n), hi: MID, shardId: 1, state: 'active' },
    { id: 2, keyspaceId: 1, lo: MID, hi: HASH_END, shardId: 1, state: 'active' },
  ]));
  assert.deepEqual(split.strayRanges(0)?.get(1), [{ lo: -(2n ** 62n), hi: MID }]);
  assert.deepEqual(split.strayRanges(1)?.get(1), [{ lo: HASH_MIN, hi: -(2n ** 62n) }]);
});

test('a reference the rewrite cannot place refuses with 0A000 instead of counting twice', () => {
  const index = new RoutingIndex(MOVING);
  assert.throws(() => filterStrays('DELETE FROM accounts WHERE CURRENT OF c', index, 1), (e: Error & { sqlstate?: string }) => e.sqlstate === '0A000');
});
