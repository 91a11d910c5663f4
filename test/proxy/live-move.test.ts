// Live moves through the proxy: concurrent writers on two proxies, MOVE / SPLIT … MOVE TO / MERGE back, nothing lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import { hashKey } from '../../config/hash.js';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/postgres.js';

let catalog: TestServer;
let shards: TestServer[];
const proxies: RunningProxy[] = [];
const clients: pg.Client[] = [];

before(async () => {
  [catalog, ...shards] = await Promise.all([startTestServer(), startTestServer({ settings: { max_prepared_transactions: 16 } }), startTestServer({ settings: { max_prepared_transactions: 16 } })]) as [TestServer, TestServer, TestServer];
  for (const s of shards) await (await s.client()).query('CREATE DATABASE app');
  const log = pino({ level: process.env.PGTIDE_TEST_LOG ?? 'silent' });
  for (let i = 0; i < 2; i++) {
    proxies.push(await runProxy({
      listen: { host: '127.0.0.1', port: await freePort() }, database: 'app', users: [{ name: 'app', password: 'app-password', admin: true }],
      auth: 'scram-sha-256', pool: { mode: 'transaction', size: 6, waitTimeoutMs: 20000, idleTimeoutMs: 60000 }, catalog: catalog.url('postgres'),
      shards: shards.map((s) => s.url('app')), tables: { sharded: [], reference: [] }, partitions: 4, http: { host: '127.0.0.1', port: 0 },
      routeCacheSize: 1000, logLevel: 'warn', twoPhaseCommit: true,
    }, log, { moverSettings: { graceMs: 300, chunkRows: 200, cutoverBudgetMs: 500, latencyFloorMs: 50, maxDelayMs: 100 } }));
  }
});
after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  for (const p of proxies) await p.stop().catch(() => {});
  await stopAllTestServers();
});

async function connect(proxy: RunningProxy, database = 'app'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'app-password', database });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

async function waitForJob(admin: pg.Client, id: number, timeoutMs = 90000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = (await admin.query(`SHOW JOB ${id}`)).rows as { field: string; value: string }[];
    const detail = Object.fromEntries(rows.map((r) => [r.field, r.value]));
    if (['done', 'failed', 'rolled_back', 'paused'].includes(detail.state!)) return detail;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${detail.state} after ${timeoutMs} ms: ${JSON.stringify(detail)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('writers on two proxies keep running while a partition moves, splits and moves, and merges back: nothing lost, zero client errors', async () => {
  const [a, b] = proxies as [RunningProxy, RunningProxy];
  const setup = await connect(a);
  await setup.query('CREATE TABLE ledger (id bigint PRIMARY KEY, n int NOT NULL)');
  const admin = await connect(a, 'pgtide');
  await admin.query('SHARD TABLE ledger BY (id)');
  await new Promise((r) => setTimeout(r, 300)); // B installs the version
  const ledger = new Map<number, number>();
  for (let i = 1; i <= 400; i++) {
    await setup.query('INSERT INTO ledger (id, n) VALUES ($1, 0)', [i]);
    ledger.set(i, 0);
  }
  // Writers: increments, inserts, deletes and two-statement transactions, through both proxies.
  let stop = false;
  const errors: string[] = [];
  let nextId = 1000;
  let ops = 0;
  const inUse = new Set<number>();
  const writer = async (c: pg.Client, seed: number) => {
    let x = seed;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    const pick = (): number | null => {
      const ids = [...ledger.keys()];
      for (let tries = 0; tries < 10; tries++) {
        const id = ids[rnd(ids.length)]!;
        if (!inUse.has(id)) {
          inUse.add(id);
          return id;
        }
      }
      return null;
    };
    while (!stop) {
      // Each writer reserves the ids it touches, so the ledger is exact under concurrency.
      const id = pick();
      if (id === null) continue;
      const op = rnd(10);
      let other: number | null = null;
      try {
        if (op < 6) {
          await c.query('UPDATE ledger SET n = n + 1 WHERE id = $1', [id]);
          ledger.set(id, ledger.get(id)! + 1);
        } else if (op < 8) {
          const nid = nextId++;
          await c.query('INSERT INTO ledger (id, n) VALUES ($1, 0)', [nid]);
          ledger.set(nid, 0);
        } else if (op < 9 && ledger.size > 300) {
          await c.query('DELETE FROM ledger WHERE id = $1', [id]);
          ledger.delete(id);
        } else {
          other = pick();
          if (other === null) continue;
          await c.query('BEGIN');
          await c.query('UPDATE ledger SET n = n + 1 WHERE id = $1', [id]);
          await c.query('UPDATE ledger SET n = n + 1 WHERE id = $1', [other]);
          await c.query('COMMIT');
          ledger.set(id, ledger.get(id)! + 1);
          ledger.set(other, ledger.get(other)! + 1);
        }
        ops++;
      } catch (err) {
        errors.push(`${(err as Error & { code?: string }).code}: ${(err as Error).message}`);
        await c.query('ROLLBACK').catch(() => {});
      } finally {
        inUse.delete(id);
        if (other !== null) inUse.delete(other);
      }
    }
  };
  const writers = [
    writer(await connect(a), 1), writer(await connect(a), 2), writer(await connect(b), 3), writer(await connect(b), 4),
  ];
  try {
    const parts = (await admin.query('SHOW PARTITIONS')).rows;
    const p = parts.find((r) => r.shard === '0')!;
    // 1. Move a whole partition to shard 1.
    const moved = await admin.query(`MOVE PARTITION ${p.id} TO SHARD 1`);
    const job1 = await waitForJob(admin, Number(moved.rows[0].job));
    assert.equal(job1.state, 'done', JSON.stringify(job1));
    assert.match(job1.throttle!, /^chunks of \d+ rows, (unpaced|paced at [\d.]+ MB\/s), \d+ ms between chunks, \d+ chunks throttled$/, 'SHOW JOB shows the throttle');
    // 2. Split another partition of shard 0 and move its upper half to shard 1.
    const q = (await admin.query('SHOW PARTITIONS')).rows.find((r) => r.shard === '0')!;
    await admin.query(`SPLIT PARTITION ${q.id} MOVE TO SHARD 1`);
    const jobs = (await admin.query('SHOW JOBS')).rows;
    const job2 = await waitForJob(admin, Number(jobs.at(-1)!.id));
    assert.equal(job2.state, 'done', JSON.stringify(job2));
    // 3. Move the upper half back and merge the two halves again.
    const halves = (await admin.query('SHOW PARTITIONS')).rows.filter((r) => r.hi === q.hi || r.lo === q.lo);
    const upper = halves.find((r) => r.hi === q.hi)!;
    const lower = halves.find((r) => r.lo === q.lo)!;
    const back = await admin.query(`MOVE PARTITION ${upper.id} TO SHARD 0`);
    assert.equal((await waitForJob(admin, Number(back.rows[0].job))).state, 'done');
    await admin.query(`MERGE PARTITIONS ${lower.id}, ${upper.id}`);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    stop = true;
    const t = setInterval(() => process.stderr.write(`still waiting for the writers; ops=${ops} errors=${errors.length}\n`), 5000);
    await Promise.all(writers);
    clearInterval(t);
  }
  assert.ok(ops > 100, `writers made progress during the moves (${ops} operations)`);
  assert.deepEqual(errors, [], 'no client saw an error');
  // Conservation: every acknowledged row exactly once, on the shard that owns it; sums equal the ledger.
  const routing = await a.catalog.loadRoutingTable();
  const ks = routing.tables.find((t) => t.name === 'ledger')!.keyspaceId!;
  const owner = (id: number) => {
    const h = hashKey('int8', BigInt(id));
    return routing.partitions.find((p) => p.keyspaceId === ks && p.lo <= h && h < p.hi)!.shardId;
  };
  const seen = new Map<number, number>();
  for (const [i, s] of shards.entries()) {
    const rows = (await (await s.client('app')).query('SELECT id, n FROM ledger')).rows as { id: string; n: number }[];
    for (const r of rows) {
      const id = Number(r.id);
      assert.ok(!seen.has(id), `row ${id} exists on two shards`);
      assert.equal(owner(id), i, `row ${id} is on shard ${i} but shard ${owner(id)} owns it`);
      seen.set(id, r.n);
    }
  }
  assert.equal(seen.size, ledger.size, 'row count equals the ledger');
  for (const [id, n] of ledger) assert.equal(seen.get(id), n, `row ${id}: ${seen.get(id)} on the shards, ${n} in the ledger`);
  const fenceRetries = proxies.reduce((sum, p) => sum + p.server.counters.fenceRetries, 0);
  console.log(`# live move: ${ops} writes during 3 jobs, ${fenceRetries} writes retried after a fence`);
});
