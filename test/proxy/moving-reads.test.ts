// Fan-outs during a live move count every row once: while the target holds the copy (job held
// after its copy) and while the source keeps its rows after the switch (cleanup grace), scatter
// reads, joins, IN lists across shards and writes without a key through the proxy (simple and
// extended protocol) answer as if each row lived on its owner only. After cleanup the routing
// table lists no stray ranges, so no shard's SQL is rewritten any more.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { hashKey } from '../../config/hash.js';
import { JobState, Mover, NoProxyRoutingControl, type MoverSettings } from '../../mover/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

const SETTINGS: Partial<MoverSettings> = { chunkRows: 100, graceMs: 0, cutoverBudgetMs: 5000, retryDelayMs: 100, lockTimeoutMs: 5000, latencyFloorMs: 50, maxDelayMs: 100 };
const ROWS = 800;

let cluster: TestCluster;
let client: pg.Client;
let direct: pg.Client[];
/** The truth: id → { grp, v } (each account has two items). */
const ledger = new Map<number, { grp: number; v: number }>();

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  client = await cluster.client();
  direct = [await cluster.shard(0), await cluster.shard(1)];
  await client.query('CREATE TABLE accounts (id bigint PRIMARY KEY, grp int NOT NULL, v int NOT NULL)');
  await client.query('CREATE TABLE items (account_id bigint NOT NULL, n int NOT NULL)');
  await client.query('CREATE INDEX ON items (account_id)');
  await cluster.proxy.catalog.shardTable('accounts', 'id', 'int8', { partitions: 8 });
  await cluster.proxy.catalog.shardTable('items', 'account_id', 'int8', { colocateWith: 'accounts' });
  await syncRouting();
  for (let start = 1; start <= ROWS; start += 100) {
    const acc: string[] = [];
    const items: string[] = [];
    for (let id = start; id < start + 100; id++) {
      const row = { grp: id % 5, v: (id * 7) % 101 };
      ledger.set(id, row);
      acc.push(`(${id}, ${row.grp}, ${row.v})`);
      items.push(`(${id}, 1)`, `(${id}, 2)`);
    }
    await client.query(`INSERT INTO accounts (id, grp, v) VALUES ${acc.join(', ')}`);
    await client.query(`INSERT INTO items (account_id, n) VALUES ${items.join(', ')}`);
  }
});

after(async () => {
  await cluster?.stop();
});

/** Install the catalog's newest routing version in the proxy now (not waiting for its NOTIFY). */
async function syncRouting(): Promise<void> {
  const t = await cluster.proxy.catalog.loadRoutingTable();
  if (t.version > cluster.proxy.server.routingTable().version) cluster.proxy.server.installRouting(t);
}

function truth() {
  const rows = [...ledger.entries()].map(([id, r]) => ({ id, ...r }));
  const groups = new Map<number, { n: number; s: number }>();
  for (const r of rows) {
    const g = groups.get(r.grp) ?? { n: 0, s: 0 };
    g.n++;
    g.s += r.v;
    groups.set(r.grp, g);
  }
  return {
    count: rows.length,
    sum: rows.reduce((n, r) => n + r.v, 0),
    top: rows.sort((a, b) => b.id - a.id).slice(0, 7).map((r) => ({ id: r.id, v: r.v })),
    groups: [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([grp, g]) => ({ grp, n: g.n, s: g.s })),
  };
}

/** Rows of the whole table on both shards, read directly: more than the truth while strays exist. */
async function rawCount(): Promise<number> {
  let n = 0;
  for (const d of direct) n += Number((await d.query('SELECT count(*) AS n FROM accounts')).rows[0].n);
  return n;
}

/** Keys hashing into [lo, hi) and keys outside it, for IN lists that span shards. */
function keysAround(lo: bigint, hi: bigint): { inside: number[]; outside: number[] } {
  const inside: number[] = [];
  const outside: number[] = [];
  for (const id of ledger.keys()) {
    const h = hashKey('int8', id);
    (h >= lo && h < hi ? inside : outside).push(id);
  }
  return { inside, outside };
}

/** Every fan-out shape through the proxy, simple and extended protocol, against the ledger. */
async function checkAnswers(label: string, range: { lo: bigint; hi: bigint }): Promise<void> {
  const t = truth();
  for (const extended of [false, true]) {
    // The same statements with the values inlined (simple) or bound (extended: Parse/Bind/Execute).
    const q = (text: string, values: unknown[]) => (extended ? client.query({ text, values }) : client.query(text.replaceAll(/\$(\d+)/g, (_, i: string) => String(values[Number(i) - 1]))));
    const how = `${label}, ${extended ? 'extended' : 'simple'} protocol`;
    const agg = await q('SELECT count(*) AS n, sum(v) AS s FROM accounts WHERE v >= $1', [0]);
    assert.equal(Number(agg.rows[0].n), t.count, `${how}: count(*)`);
    assert.equal(Number(agg.rows[0].s), t.sum, `${how}: sum(v)`);
    const top = await q('SELECT id, v FROM accounts WHERE v >= $1 ORDER BY id DESC LIMIT 7', [0]);
    assert.deepEqual(top.rows.map((r) => ({ id: Number(r.id), v: r.v })), t.top, `${how}: ORDER BY … LIMIT`);
    const groups = await q('SELECT grp, count(*) AS n, sum(v) AS s FROM accounts WHERE v >= $1 GROUP BY grp ORDER BY grp', [0]);
    assert.deepEqual(groups.rows.map((r) => ({ grp: r.grp, n: Number(r.n), s: Number(r.s) })), t.groups, `${how}: GROUP BY`);
    const join = await q('SELECT count(*) AS n FROM accounts a JOIN items i ON i.account_id = a.id WHERE a.v >= $1', [0]);
    assert.equal(Number(join.rows[0].n), t.count * 2, `${how}: join of colocated tables`);
    const { inside, outside } = keysAround(range.lo, range.hi);
    const keys = [...inside.slice(0, 5), ...outside.slice(0, 5)];
    const inList = await q(`SELECT count(*) AS n FROM accounts WHERE id IN (${keys.join(', ')}) AND v >= $1`, [0]);
    assert.equal(Number(inList.rows[0].n), keys.length, `${how}: IN list over both shards`);
  }
}

/** UPDATE and DELETE without a key report (and make) the true number of changed rows. */
async function checkUpdate(label: string): Promise<void> {
  const simple = await client.query('UPDATE accounts SET v = v + 1 WHERE grp = 1');
  const grp1 = [...ledger.values()].filter((r) => r.grp === 1);
  for (const r of grp1) r.v++;
  assert.equal(simple.rowCount, grp1.length, `${label}: UPDATE without key, simple protocol`);
  const ext = await client.query({ text: 'UPDATE accounts SET v = v + $1 WHERE grp = $2 RETURNING id', values: [2, 3] });
  const grp3 = [...ledger.entries()].filter(([, r]) => r.grp === 3);
  for (const [, r] of grp3) r.v += 2;
  assert.equal(ext.rowCount, grp3.length, `${label}: UPDATE … RETURNING without key, extended protocol`);
  assert.deepEqual(ext.rows.map((r) => Number(r.id)).sort((a, b) => a - b), grp3.map(([id]) => id).sort((a, b) => a - b), `${label}: each updated row returned once`);
  // A few rows of every partition go: the row count and RETURNING name each deleted row once.
  const floor = [...ledger.values()].filter((r) => r.grp === 4).map((r) => r.v).sort((a, b) => b - a)[10]!;
  const doomed = [...ledger.entries()].filter(([, r]) => r.grp === 4 && r.v >= floor).map(([id]) => id).sort((a, b) => a - b);
  const del = await client.query({ text: 'DELETE FROM accounts WHERE grp = $1 AND v >= $2 RETURNING id', values: [4, floor] });
  await client.query(`DELETE FROM items WHERE account_id IN (${doomed.join(', ')})`);
  for (const id of doomed) ledger.delete(id);
  assert.equal(del.rowCount, doomed.length, `${label}: DELETE … RETURNING without key`);
  assert.deepEqual(del.rows.map((r) => Number(r.id)).sort((a, b) => a - b), doomed, `${label}: each deleted row returned once`);
}

test('fan-outs count every row once while a move holds its copy, during cleanup grace, and after it', async () => {
  const catalog = cluster.proxy.catalog;
  const info = cluster.proxy.server.routing().tableInfo('accounts')!;
  const part = (await catalog.loadRoutingTable()).partitions.find((p) => p.keyspaceId === info.keyspaceId && p.shardId === 0)!;
  const gates = new Map<string, { reached: Promise<void>; reach: () => void; open: () => void; opened: Promise<void> }>();
  for (const name of ['state:catching_up', 'state:cleanup']) {
    let reach!: () => void;
    let open!: () => void;
    const reached = new Promise<void>((r) => (reach = r));
    const opened = new Promise<void>((r) => (open = r));
    gates.set(name, { reached, reach, open, opened });
  }
  const mover = new Mover({
    catalog, routing: new NoProxyRoutingControl(), settings: SETTINGS,
    hooks: {
      async onStep(_id, step) {
        const g = gates.get(step);
        if (!g) return;
        g.reach();
        await g.opened;
      },
    },
  });
  const deadline = <T>(p: Promise<T>, what: string): Promise<T> => Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), 120_000).unref())]);
  try {
    const job = await mover.startMove(part.id, 1);
    const run = mover.runJob(job.id);
    run.catch(() => {});

    // 1. Copy done, job held before catching up: shard 1 holds a copy of the range it does not own.
    await deadline(gates.get('state:catching_up')!.reached, 'the copy');
    await syncRouting();
    const inMove = cluster.proxy.server.routing();
    assert.equal(inMove.partitionFor(info.keyspaceId!, part.lo).shardId, 0, 'the source still owns the range');
    assert.deepEqual(inMove.strayRanges(1)?.get(info.keyspaceId!), [{ lo: part.lo, hi: part.hi }], 'the target is marked as holding the range without owning it');
    assert.equal(inMove.strayRanges(0), null, 'the source owns what it holds');
    assert.ok(await rawCount() > ledger.size, 'the copy is there: summing the shards directly would count its rows twice');
    await checkAnswers('during the copy', part);
    await checkUpdate('during the copy');
    await checkAnswers('during the copy, after the updates', part);

    // 2. Switched, cleanup held: shard 0 keeps the rows of a range shard 1 now owns.
    gates.get('state:catching_up')!.open();
    await deadline(gates.get('state:cleanup')!.reached, 'the switch');
    await syncRouting();
    const inGrace = cluster.proxy.server.routing();
    assert.equal(inGrace.partitionFor(info.keyspaceId!, part.lo).shardId, 1, 'the target owns the range');
    assert.deepEqual(inGrace.strayRanges(0)?.get(info.keyspaceId!), [{ lo: part.lo, hi: part.hi }], 'the source is marked until cleanup ends');
    assert.equal(inGrace.strayRanges(1), null);
    assert.ok(await rawCount() > ledger.size, 'the source still holds the range');
    await checkAnswers('during cleanup grace', part);
    await checkUpdate('during cleanup grace');
    await checkAnswers('during cleanup grace, after the updates', part);

    // 3. Done: nothing is marked, nothing rewritten, answers still exact.
    gates.get('state:cleanup')!.open();
    const done = await deadline(run, 'the job');
    assert.equal(done.state, JobState.Done, `${done.reason ?? done.error ?? ''}`);
    await syncRouting();
    const table = await catalog.loadRoutingTable();
    assert.equal(table.strays, undefined, 'the routing table lists no stray ranges once cleanup is done');
    const afterIndex = cluster.proxy.server.routing();
    assert.equal(afterIndex.version, table.version);
    assert.equal(afterIndex.hasStrays, false);
    assert.equal(afterIndex.strayRanges(0), null);
    assert.equal(afterIndex.strayRanges(1), null);
    assert.equal(await rawCount(), ledger.size, 'every row on one shard only');
    await checkAnswers('after cleanup', part);
    await checkUpdate('after cleanup');
    await checkAnswers('after cleanup, after the updates', part);
  } finally {
    for (const g of gates.values()) g.open();
    await mover.close();
  }
});
