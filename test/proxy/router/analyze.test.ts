// Tests for the statement analyzer: everyday statements → route plans, and the plan cache.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Router, type StatementPlan } from '../../../proxy/router/index.js';
import { testIndex } from './fixture.js';

const index = testIndex();
let router: Router;
before(async () => {
  await Router.init();
  router = new Router(() => index);
});

function plan(sql: string): StatementPlan {
  const { analysis } = router.analyze(sql);
  assert.equal(analysis.plans.length, 1, sql);
  return analysis.plans[0]!;
}

/** [sql, expected plan subset]: every listed field must match exactly. */
const cases: [string, Record<string, unknown>][] = [
  // keyed reads
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 12345', { kind: 'keyed', table: 'pgbench_accounts', write: false, keys: [{ literal: 0 }] }],
  ['select * from customers where 42 = id', { kind: 'keyed', keys: [{ literal: 0 }] }],
  ['select * from customers where id = $1::bigint and name = $2', { kind: 'keyed', keys: [{ param: 1 }] }],
  ["select * from customers where id = '7'::int8", { kind: 'keyed', keys: [{ literal: 0 }] }],
  ['select * from customers where name = $1 and id in (1, 2, $2)', { kind: 'keyed', keys: [{ literal: 0 }, { literal: 1 }, { param: 2 }] }],
  ['select * from customers where id = any($1::bigint[])', { kind: 'keyed', keys: [{ param: 1, array: true }] }],
  ["select * from customers where id = any('{1,2,3}')", { kind: 'keyed', keys: [{ literal: 0, array: true }] }],
  ['select * from customers where id = any(array[1, 2])', { kind: 'keyed', keys: [{ literal: 0 }, { literal: 1 }] }],
  ['select * from customers where id = 1 or id = 2', { kind: 'keyed', keys: [{ literal: 0 }, { literal: 1 }] }],
  ['SELECT c.name FROM customers c WHERE c.id = 5', { kind: 'keyed', table: 'customers', keys: [{ literal: 0 }] }],
  ['select * from public.customers where public.customers.id = 5', { kind: 'keyed', table: 'customers' }],
  ['select * from app.events e where e.tenant = 3', { kind: 'keyed', table: 'app.events' }],
  ["select * from users where email = 'a@b.c'", { kind: 'keyed', table: 'users', keys: [{ literal: 0 }] }],
  ['select * from customers where id = -5', { kind: 'keyed', keys: [{ literal: 0 }] }],
  ['select * from customers where id = 1 for update skip locked', { kind: 'keyed', write: true }],
  ['select * from customers where id = $1 for share', { kind: 'keyed', write: true }],
  ['with c as (select * from customers where id = 9) select count(*) from c', { kind: 'keyed', table: 'customers' }],
  ['explain select * from customers where id = 3', { kind: 'keyed' }],
  // scatter
  ['select count(*) from customers', { kind: 'scatter-read', tables: ['customers'] }],
  ['select * from customers where id > 5', { kind: 'scatter-read' }],
  ['select * from customers where id = 1 or name = $1', { kind: 'scatter-read' }],
  ['select * from customers where id = null', { kind: 'scatter-read' }],
  ['select * from customers a where (select 1) = 1 and exists (select 1 from customers b where b.id = 1)', { kind: 'unsupported', sqlstate: '0A000' }],
  // joins
  ['select * from customers c join orders o on o.customer_id = c.id where c.id = $1', { kind: 'keyed', keys: [{ param: 1 }] }],
  ['select * from customers c, orders o where o.customer_id = c.id and o.customer_id = 7', { kind: 'keyed', keys: [{ literal: 0 }] }],
  ['select * from customers c join orders o on o.customer_id = c.id', { kind: 'scatter-read', tables: ['customers', 'orders'] }],
  ['select * from customers c join orders o on o.note = c.name', { kind: 'unsupported', sqlstate: '0A000' }],
  ['select * from customers c join users u on u.email = c.name where c.id = 1', { kind: 'unsupported', sqlstate: '0A000' }],
  ['select * from customers c join countries k on k.code = c.country where c.id = 1', { kind: 'keyed' }],
  ['select * from customers c join some_local_table l on l.id = c.id', { kind: 'unsupported', sqlstate: '0A000' }],
  ['select * from orders o where o.customer_id in (select id from customers where name = $1)', { kind: 'scatter-read' }],
  ['select * from customers c where c.id = 1 and exists (select 1 from orders o where o.customer_id = c.id)', { kind: 'keyed', keys: [{ literal: 0 }] }],
  // writes
  ['insert into customers (id, name) values (1, $1)', { kind: 'keyed', table: 'customers', write: true, keys: [{ literal: 0 }] }],
  ['insert into customers (name, id) values ($1, $2) on conflict (id) do update set name = excluded.name returning *', { kind: 'keyed', keys: [{ param: 2 }] }],
  ["insert into customers (id, name) values (1, 'a'), (2, 'b'), ($1, 'c')", { kind: 'insert-rows', table: 'customers', keys: [{ literal: 0 }, { literal: 2 }, { param: 1 }] }],
  ['insert into customers values (1)', { kind: 'unsupported', sqlstate: '0A000' }],
  ['insert into customers (name) values ($1)', { kind: 'unsupported', sqlstate: '0A000' }],
  ['insert into customers (id) values (default)', { kind: 'unsupported', sqlstate: '0A000' }],
  ['insert into customers (id, name) select id, name from staging', { kind: 'unsupported', sqlstate: '0A000' }],
  ["insert into customers (name, id) select 'n' || g, g from generate_series(1, 10) g", { kind: 'insert-select', table: 'customers', keyPosition: 1 }],
  ['insert into customers (id, name) select code::int, name from countries on conflict do nothing', { kind: 'insert-select', keyPosition: 0 }],
  ['insert into customers (id, name) select (random() * 10)::int, $1', { kind: 'unsupported', sqlstate: '0A000' }],
  ['insert into customers (id, name) select id + 1, name from customers', { kind: 'unsupported', sqlstate: '0A000' }],
  ['insert into customers select g from generate_series(1, 3) g', { kind: 'unsupported', sqlstate: '0A000' }],
  ['update customers set name = $1 where id = $2', { kind: 'keyed', write: true, keys: [{ param: 2 }] }],
  ['update customers set name = $1 where name = $2', { kind: 'broadcast', reason: 'write-without-key', tables: ['customers'] }],
  ['update customers set id = 2 where id = 1', { kind: 'unsupported', sqlstate: '0A000' }],
  ['delete from orders where customer_id = 3 returning *', { kind: 'keyed', table: 'orders', write: true }],
  ['delete from orders', { kind: 'broadcast', reason: 'write-without-key' }],
  ['truncate customers', { kind: 'broadcast', reason: 'write-without-key' }],
  ['with d as (delete from customers where id = 1 returning *) select * from d', { kind: 'unsupported', sqlstate: '0A000' }],
  // reference / unsharded
  ['select * from countries', { kind: 'reference-read', tables: ['countries'] }],
  ["insert into countries (code) values ('NL')", { kind: 'broadcast', reason: 'reference-write', tables: ['countries'] }],
  ['update countries set name = $1', { kind: 'broadcast', reason: 'reference-write' }],
  ['select * from some_local_table', { kind: 'unsharded', tables: ['some_local_table'] }],
  ['select 1', { kind: 'unsharded', tables: [] }],
  ["select nextval('s'), now()", { kind: 'unsharded', tables: [] }],
  ['select c.relname from pg_catalog.pg_class c join pg_namespace n on n.oid = c.relnamespace', { kind: 'unsharded', tables: [] }],
  ['select * from information_schema.tables', { kind: 'unsharded' }],
  ['show search_path', { kind: 'unsharded' }],
  ['with recursive r(n) as (select 1 union all select n + 1 from r where n < 5) select * from r', { kind: 'unsharded', tables: [] }],
  // transactions
  ['BEGIN', { kind: 'transaction', op: 'begin' }],
  ['start transaction isolation level serializable', { kind: 'transaction', op: 'begin' }],
  ['commit', { kind: 'transaction', op: 'commit' }],
  ['rollback', { kind: 'transaction', op: 'rollback' }],
  ['savepoint sp1', { kind: 'transaction', op: 'savepoint', name: 'sp1' }],
  ['release savepoint sp1', { kind: 'transaction', op: 'release', name: 'sp1' }],
  ['rollback to savepoint sp1', { kind: 'transaction', op: 'rollback-to', name: 'sp1' }],
  ["prepare transaction 'gx'", { kind: 'transaction', op: 'prepare-transaction' }],
  ["commit prepared 'gx'", { kind: 'transaction', op: 'commit-prepared' }],
  ["rollback prepared 'gx'", { kind: 'transaction', op: 'rollback-prepared' }],
  ['set transaction isolation level repeatable read', { kind: 'transaction', op: 'set-transaction' }],
  ['set local statement_timeout = 1000', { kind: 'transaction', op: 'set-local', name: 'statement_timeout' }],
  ['set constraints all deferred', { kind: 'transaction', op: 'set-local' }],
  // session
  ["SET search_path = 'app', public", { kind: 'session', op: 'set', name: 'search_path' }],
  ["set time zone 'UTC'", { kind: 'session', op: 'set', name: 'timezone' }],
  ['reset statement_timeout', { kind: 'session', op: 'reset', name: 'statement_timeout' }],
  ['reset all', { kind: 'session', op: 'reset' }],
  ['discard all', { kind: 'session', op: 'discard', name: 'all' }],
  ['listen jobs', { kind: 'session', op: 'listen', name: 'jobs' }],
  ['unlisten *', { kind: 'session', op: 'unlisten' }],
  ["notify jobs, 'x'", { kind: 'unsharded' }],
  ['prepare q (bigint) as select * from customers where id = $1', { kind: 'session', op: 'prepare', name: 'q', plan: { kind: 'keyed', table: 'customers', write: false, keys: [{ param: 1 }] } }],
  ['execute q(5)', { kind: 'session', op: 'execute', name: 'q' }],
  ['deallocate q', { kind: 'session', op: 'deallocate', name: 'q' }],
  ['declare cur cursor for select * from customers where id = 1', { kind: 'cursor', op: 'declare', name: 'cur' }],
  ['declare cur cursor for select * from customers', { kind: 'unsupported', sqlstate: '0A000' }],
  ['fetch 10 from cur', { kind: 'cursor', op: 'fetch', name: 'cur' }],
  // utility and DDL
  ['DO $$ BEGIN PERFORM 1; END $$', { kind: 'broadcast', reason: 'utility' }],
  ['vacuum analyze customers', { kind: 'broadcast', reason: 'utility', tables: ['customers'] }],
  ['vacuum some_local_table', { kind: 'unsharded', tables: ['some_local_table'] }],
  ['create table items (id bigint primary key, name text)', { kind: 'broadcast', reason: 'ddl', tables: ['items'], atomic: true }],
  ['create index concurrently on customers (name)', { kind: 'broadcast', reason: 'ddl', tables: ['customers'], atomic: false }],
  ['alter table customers add column age int', { kind: 'broadcast', reason: 'ddl', tables: ['customers'] }],
  ['drop table if exists items', { kind: 'broadcast', reason: 'ddl' }],
  ['create extension if not exists pgcrypto', { kind: 'broadcast', reason: 'ddl', atomic: true }],
  ['create database other', { kind: 'broadcast', reason: 'utility' }],
  ['drop index concurrently customers_name_idx', { kind: 'broadcast', reason: 'ddl', atomic: false }],
  ['alter system set work_mem = 1', { kind: 'broadcast', reason: 'utility' }],
  ['create tablespace t location \'/tmp\'', { kind: 'broadcast', reason: 'ddl', atomic: false }],
  ['create table t2 as select * from customers', { kind: 'unsupported', sqlstate: '0A000' }],
  // COPY
  ['copy customers from stdin', { kind: 'copy', table: 'customers', direction: 'from', format: 'text' }],
  ['COPY customers (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)', { kind: 'copy', format: 'csv', columns: ['id', 'name'], options: { format: 'csv', header: true } }],
  ["copy customers from stdin with (format csv, delimiter ';')", { kind: 'copy', options: { format: 'csv', delimiter: ';' } }],
  ['copy customers to stdout (format binary)', { kind: 'copy', direction: 'to', format: 'binary' }],
  ['copy (select * from customers where id = 1) to stdout', { kind: 'copy', table: '', direction: 'to', query: { kind: 'keyed', table: 'customers', write: false, keys: [{ literal: 0 }] } }],
  ["copy customers from '/tmp/x.csv'", { kind: 'unsupported', sqlstate: '0A000' }],
  // errors
  ['select * form customers', { kind: 'unsupported', sqlstate: '42601', message: 'syntax error at or near "form"', position: 10 }],
];

describe('analyzer: everyday statements', () => {
  it(`covers at least 40 statements (${cases.length})`, () => assert.ok(cases.length >= 40));
  for (const [sql, want] of cases) {
    it(sql, () => {
      const got = plan(sql) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, `${k} of ${JSON.stringify(got)}`);
    });
  }
});

describe('analyzer: multi-statement, spans and cache', () => {
  it('plans every statement of a simple query and reports spans', () => {
    const sql = "BEGIN; UPDATE customers SET name = 'x' WHERE id = 4; COMMIT;";
    const r = router.analyze(sql);
    assert.deepEqual(r.analysis.plans.map((p) => p.kind), ['transaction', 'keyed', 'transaction']);
    assert.equal(r.analysis.statements, 3);
    assert.equal(r.analysis.readOnly, false);
    assert.deepEqual(r.spans.map(([s, e]) => sql.slice(s, e)), ['BEGIN', "UPDATE customers SET name = 'x' WHERE id = 4", 'COMMIT']);
    const keyed = r.analysis.plans[1]!;
    assert.ok(keyed.kind === 'keyed');
    assert.equal(r.literals[(keyed.keys[0] as { literal: number }).literal], '4');
  });
  it('a second statement of the same shape is a cache hit with its own literals', () => {
    const a = router.analyze('select * from customers where id = 11 and name = $$x$$');
    const b = router.analyze("SELECT *  FROM customers WHERE id = 12 AND name = 'y'");
    assert.equal(a.shape, b.shape);
    assert.equal(b.analysis.cached, true);
    assert.deepEqual(b.literals, ['12', 'y']);
    assert.deepEqual(b.analysis.plans, a.analysis.plans);
  });
  it('multi-row INSERT spans are recomputed for each execution', () => {
    const s1 = "insert into orders (customer_id, note) values (1, 'a'), (22, 'bb') returning *";
    const s2 = "insert into orders (customer_id, note) values (333, 'ccc'), (4, '') returning *";
    router.analyze(s1);
    const r = router.analyze(s2);
    assert.equal(r.analysis.cached, true);
    const p = r.analysis.plans[0]!;
    assert.ok(p.kind === 'insert-rows');
    assert.deepEqual(p.rowSpans.map(([s, e]) => s2.slice(s, e)), ["(333, 'ccc')", "(4, '')"]);
    assert.equal(s2.slice(...p.head), 'insert into orders (customer_id, note) values ');
    assert.equal(s2.slice(...p.tail), ' returning *');
  });
  it('literal positions map through multibyte text', () => {
    const p = plan("select * from users where name = 'ünï😀' and email = 'é@x'");
    assert.deepEqual(p, { kind: 'keyed', table: 'users', write: false, keys: [{ literal: 1 }] });
  });
  it('invalidate() drops cached plans (a table became sharded)', () => {
    const tables = new Map<string, { name: string; kind: 'sharded' | 'reference'; keyColumn?: string; keyType?: 'int8'; keyspaceId?: number }>();
    const r = new Router(() => ({ table: (n: string) => tables.get(n) }));
    assert.equal(r.analyze('select * from items where id = 1').analysis.plans[0]!.kind, 'unsharded');
    tables.set('items', { name: 'items', kind: 'sharded', keyColumn: 'id', keyType: 'int8', keyspaceId: 1 });
    assert.equal(r.analyze('select * from items where id = 2').analysis.plans[0]!.kind, 'unsharded');
    r.invalidate();
    assert.equal(r.analyze('select * from items where id = 3').analysis.plans[0]!.kind, 'keyed');
  });
  it('syntax errors fail the whole string, with a 1-based position', () => {
    const r = router.analyze('select 1; selec 2');
    assert.equal(r.analysis.plans.length, 1);
    assert.deepEqual(r.analysis.plans[0], { kind: 'unsupported', sqlstate: '42601', message: 'syntax error at or near "selec"', position: 11 });
  });
  it('an empty query has no statements', () => {
    const r = router.analyze(' -- nothing\n ');
    assert.equal(r.analysis.statements, 0);
  });
});
