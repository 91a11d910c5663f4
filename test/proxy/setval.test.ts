// A restore's setval, rewritten per shard (pure part; the restore tests run it through pg_restore and psql).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSetval, shardSetvalSql } from '../../proxy/session/setval.js';

test('setval statements as pg_dump writes them are recognised; anything else is not', () => {
  assert.deepEqual(parseSetval("SELECT pg_catalog.setval('public.orders_id_seq', 3000, true);"), { sequence: 'public.orders_id_seq', value: 3000n, isCalled: true });
  assert.deepEqual(parseSetval("select setval('s', 1, false)"), { sequence: 's', value: 1n, isCalled: false });
  assert.deepEqual(parseSetval("SELECT setval('s'::regclass, 7)"), { sequence: 's', value: 7n, isCalled: true });
  assert.equal(parseSetval("SELECT setval('s', 7), 1"), null);
  assert.equal(parseSetval("SELECT setval('s', (SELECT max(id) FROM t))"), null);
  assert.equal(parseSetval("SELECT setval('it''s', 7)"), null);
});

test('each shard resumes at its own residue above the value; only the first shard answers', () => {
  const call = parseSetval("SELECT pg_catalog.setval('public.orders_id_seq', 3000, true);")!;
  const s0 = shardSetvalSql(call, 0, true);
  const s1 = shardSetvalSql(call, 1, false);
  assert.match(s0, /THEN 3009 ELSE 3000 END/); // 3009 ≡ 1 (mod 64), the first above 3000
  assert.match(s1, /THEN 3010 ELSE 3000 END/);
  assert.doesNotMatch(s0, /WHERE s\.r IS NULL/);
  assert.match(s1, /WHERE s\.r IS NULL/);
  // is_called = false: v itself is still free, so shard 0 may hand it out if it is its residue.
  assert.match(shardSetvalSql(parseSetval("SELECT setval('s', 65, false)")!, 0, true), /THEN 65 ELSE 65 END, CASE WHEN q\.inc = 64 THEN false ELSE false END/);
});
