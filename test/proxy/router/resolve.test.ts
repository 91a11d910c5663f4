// Tests for resolveShards: literals, text/binary params, arrays, NULLs and the error cases.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Router, resolveRowShards, resolveShards, RouteError, type BoundParams } from '../../../proxy/router/index.js';
import { KeyValueError } from '../../../config/hash.js';
import { testIndex } from './fixture.js';

const index = testIndex();
const customers = index.tableInfo('customers')!;
let router: Router;
before(async () => {
  await Router.init();
  router = new Router(() => index);
});

function shards(sql: string, bound: BoundParams | null = null): number[] | 'all' {
  const r = router.analyze(sql);
  return resolveShards(r.analysis.plans[0]!, r.literals, bound, index);
}
const int8 = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(v);
  return b;
};

describe('resolveShards', () => {
  it('keyed literal → the shard owning hash(key)', () => {
    for (const k of [0, 1, 42, -7, 12345, 9_000_000_000]) {
      assert.deepEqual(shards(`select * from customers where id = ${k}`), [index.shardForKey(customers, k)]);
    }
  });
  it('spreads keys over all four shards', () => {
    const seen = new Set<number>();
    for (let k = 0; k < 200; k++) seen.add(index.shardForKey(customers, k));
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  });
  it('text and binary parameters of every int width agree', () => {
    const want = [index.shardForKey(customers, 123456)];
    const sql = 'select * from customers where id = $1';
    assert.deepEqual(shards(sql, { values: [Buffer.from('123456')] }), want);
    assert.deepEqual(shards(sql, { values: [int8(123456n)], formats: [1] }), want);
    const b4 = Buffer.alloc(4);
    b4.writeInt32BE(123456);
    assert.deepEqual(shards(sql, { values: [b4], formats: [1] }), want);
    const b2 = Buffer.alloc(2);
    b2.writeInt16BE(-5);
    assert.deepEqual(shards(sql, { values: [b2], formats: [1] }), [index.shardForKey(customers, -5)]);
  });
  it('text keys from literals and text/binary params', () => {
    const users = index.tableInfo('users')!;
    const want = [index.shardForKey(users, 'ann@example.com')];
    assert.deepEqual(shards("select * from users where email = 'ann@example.com'"), want);
    assert.deepEqual(shards('select * from users where email = $1', { values: [Buffer.from('ann@example.com')], formats: [1] }), want);
    assert.deepEqual(shards("select * from users where email = E'ann\\x40example.com'"), want);
  });
  it('uuid keys: text any case, binary 16 bytes', () => {
    const sessions = index.tableInfo('sessions')!;
    const u = '123e4567-e89b-12d3-a456-426614174000';
    const want = [index.shardForKey(sessions, u)];
    assert.deepEqual(shards(`select * from sessions where sid = '${u.toUpperCase()}'`), want);
    assert.deepEqual(shards('select * from sessions where sid = $1', { values: [Buffer.from(u.replaceAll('-', ''), 'hex')], formats: [1] }), want);
  });
  it('IN lists and arrays (literal, text param, binary param) give the union, ascending', () => {
    const keys = [1, 2, 3, 4, 5, 6, 7, 8];
    const want = [...new Set(keys.map((k) => index.shardForKey(customers, k)))].sort();
    assert.deepEqual(shards(`select * from customers where id in (${keys.join(',')})`), want);
    assert.deepEqual(shards(`select * from customers where id = any('{${keys.join(',')}}')`), want);
    assert.deepEqual(shards('select * from customers where id = any($1)', { values: [Buffer.from(`{${keys.join(',')},NULL}`)] }), want);
    // Binary int8[]: ndim 1, no nulls, elem oid 20, dim (8, lbound 1), then (len, value) pairs.
    const head = Buffer.alloc(20);
    head.writeInt32BE(1, 0);
    head.writeInt32BE(0, 4);
    head.writeInt32BE(20, 8);
    head.writeInt32BE(keys.length, 12);
    head.writeInt32BE(1, 16);
    const body = keys.map((k) => {
      const b = Buffer.alloc(12);
      b.writeInt32BE(8, 0);
      b.writeBigInt64BE(BigInt(k), 4);
      return b;
    });
    assert.deepEqual(shards('select * from customers where id = any($1)', { values: [Buffer.concat([head, ...body])], formats: [1] }), want);
  });
  it('NULL key → no row can match: the primary shard answers', () => {
    assert.deepEqual(shards('select * from customers where id = $1', { values: [null] }), [index.primaryShardId]);
  });
  it('multi-row INSERT: one shard per row', () => {
    const r = router.analyze('insert into customers (id, name) values (1, $1), (2, $1), ($2, $1)');
    const p = r.analysis.plans[0]!;
    assert.ok(p.kind === 'insert-rows');
    const bound = { values: [Buffer.from('n'), Buffer.from('3')] };
    assert.deepEqual(resolveRowShards(p, r.literals, bound, index), [1, 2, 3].map((k) => index.shardForKey(customers, k)));
  });
  it('sameShard plans fail with 0A000 when keys land on different shards', () => {
    const sql = 'select * from customers where id = $1 union all select * from orders where customer_id = $2';
    let a = 0;
    let b = 1;
    while (index.shardForKey(customers, a) === index.shardForKey(customers, b)) b++;
    assert.throws(() => shards(sql, { values: [Buffer.from(String(a)), Buffer.from(String(b))] }), (e: unknown) => e instanceof RouteError && e.sqlstate === '0A000');
    assert.deepEqual(shards(sql, { values: [Buffer.from(String(a)), Buffer.from(String(a))] }), [index.shardForKey(customers, a)]);
  });
  it('a key the parser cannot read: reads scatter, writes fail like Postgres', () => {
    assert.equal(shards('select * from customers where id = 5.0'), 'all');
    assert.throws(() => shards("update customers set name = 'x' where id = 'abc'"), (e: unknown) => e instanceof KeyValueError && e.sqlstate === '22P02');
    assert.throws(() => shards('insert into app.events (tenant) values (70000)'), (e: unknown) => e instanceof KeyValueError && e.sqlstate === '22003');
  });
  it('other plan kinds', () => {
    assert.equal(shards('select count(*) from customers'), 'all');
    assert.equal(shards('delete from customers'), 'all');
    assert.deepEqual(shards('select 1'), [0]);
    const ref = shards('select * from countries');
    assert.ok(Array.isArray(ref) && ref.length === 1);
    assert.equal(shards('begin'), 'all');
    assert.throws(() => shards('insert into customers values (1)'), (e: unknown) => e instanceof RouteError && e.sqlstate === '0A000' && /name its columns/.test(e.message));
  });
  it('a missing parameter is a protocol error', () => {
    assert.throws(() => shards('select * from customers where id = $2', { values: [Buffer.from('1')] }), (e: unknown) => e instanceof RouteError && e.sqlstate === '08P01');
  });
});
