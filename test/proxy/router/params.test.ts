// $n parameters in SQL text: found where Postgres's scanner finds them, renumbered per shard.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { paramRefs, renumberParams } from '../../../proxy/router/params.js';

test('parameters are found outside strings, identifiers, comments and dollar quotes', () => {
  const sql = `INSERT INTO t (a, "b$1", c$2) VALUES ($1, '$2', E'\\'$3', $$ $4 $$, $tag$ $5 $tag$, "x""$6", $7) -- $8
    /* $9 /* nested $10 */ $11 */ RETURNING $12`;
  assert.deepEqual(paramRefs(sql).map((r) => r.n), [1, 7, 12]);
  assert.deepEqual(paramRefs("SELECT 'it''s $1', $2").map((r) => r.n), [2]);
  assert.deepEqual(paramRefs('SELECT $1+$2*$10').map((r) => r.n), [1, 2, 10]);
});

test('renumbering keeps order of first appearance and repeated parameters', () => {
  const r = renumberParams("INSERT INTO t (id, v) VALUES ($5, $6), ($9, '$1') ON CONFLICT (id) DO UPDATE SET v = $6");
  assert.equal(r.sql, "INSERT INTO t (id, v) VALUES ($1, $2), ($3, '$1') ON CONFLICT (id) DO UPDATE SET v = $2");
  assert.deepEqual(r.oldNumbers, [5, 6, 9]);
  assert.deepEqual(renumberParams('SELECT 1'), { sql: 'SELECT 1', oldNumbers: [] });
});
