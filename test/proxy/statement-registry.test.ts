// The process-wide prepared statement registry: dedupe by (SQL, types), bounded as an LRU.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatementRegistry } from '../../proxy/session/statement-registry.js';

const parse = (name: string, sql: string, types: number[]) => Buffer.from(`${name}|${sql}|${types.join(',')}`);

test('the same text and types share one server name; other types get another', () => {
  const r = new StatementRegistry(parse);
  const a = r.intern('SELECT $1', [23]);
  assert.equal(r.intern('SELECT $1', [23]), a);
  const b = r.intern('SELECT $1', [25]);
  assert.notEqual(b.id, a.id);
  assert.equal(a.serverName, `pgtide_${a.id}`);
  assert.equal(a.parseBytes.toString(), `pgtide_${a.id}|SELECT $1|23`);
  assert.equal(r.size, 2);
});

test('bounded: the least recently used text is forgotten, and comes back under a new name', () => {
  const r = new StatementRegistry(parse, 3);
  const one = r.intern('SELECT 1', []);
  const two = r.intern('SELECT 2', []);
  r.intern('SELECT 3', []);
  assert.equal(r.intern('SELECT 1', []), one, 'a hit refreshes SELECT 1');
  r.intern('SELECT 4', []);
  assert.equal(r.size, 3);
  assert.equal(r.intern('SELECT 1', []), one, 'SELECT 1 was used recently and stayed');
  const twoAgain = r.intern('SELECT 2', []);
  assert.notEqual(twoAgain.id, two.id, 'SELECT 2 was the oldest and was evicted');
  assert.equal(r.size, 3);
  // 10k one-off texts (an app that inlines literals) do not grow it past its bound.
  for (let i = 0; i < 10_000; i++) r.intern(`SELECT ${i} + 0`, []);
  assert.equal(r.size, 3);
});
