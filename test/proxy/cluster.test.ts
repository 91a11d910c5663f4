// Many proxies, one routing table: versions announced to every proxy, dead proxies, leader lease, load history.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import { hashKey } from '../../config/hash.js';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/postgres.js';
import { killAllPgtideProcesses, startPgtideProcess } from '../helpers/pgtide-process.js';

const clients: pg.Client[] = [];
let catalog: TestServer;
let shards: TestServer[];
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgtide-cluster-'));
  chmodSync(dir, 0o755); // the embedded servers run as the postgres user
  [catalog, ...shards] = await Promise.all([startTestServer(), startTestServer(), startTestServer()]) as [TestServer, TestServer, TestServer];
  for (const s of shards) await (await s.client()).query('CREATE DATABASE app');
});
after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  killAllPgtideProcesses();
  await stopAllTestServers();
  rmSync(dir, { recursive: true, force: true });
});

function configYaml(port: number, httpPort: number, catalogDb: string): string {
  return [
    `listen: {host: 127.0.0.1, port: ${port}}`,
    'database: app',
    'users: [{name: app, password: app-password, admin: true}]',
    `catalog: ${catalog.url(catalogDb)}`,
    `shards: [${shards.map((s) => s.url('app')).join(', ')}]`,
    `http: {host: 127.0.0.1, port: ${httpPort}}`,
    'pool: {size: 4}',
  ].join('\n') + '\n';
}

async function connect(port: number, database = 'app'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: 'app-password', database });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return { value: v, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('a split on proxy A is routed by proxy B within 1 s; killing the leader moves the lease and marks it dead', async () => {
  await (await catalog.client()).query('CREATE DATABASE cat1');
  const cfg = join(dir, 'a.yaml');
  writeFileSync(cfg, configYaml(await freePort(), await freePort(), 'cat1'));
  const a = await startPgtideProcess(['--config', cfg]);
  const b = await startPgtideProcess(['--join', catalog.url('cat1'), '--port', String(await freePort()), '--http-port', String(await freePort())]);
  const appA = await connect(a.port);
  await appA.query('CREATE TABLE events (id bigint, payload text)');
  const adminA = await connect(a.port, 'pgtide');
  const adminB = await connect(b.port, 'pgtide');
  await adminA.query('SHARD TABLE events BY (id)');
  // B installs the new version by NOTIFY (or its safety-net poll).
  await eventually('B knows the table', async () => (await adminB.query('SHOW TABLES')).rows.some((r) => r.name === 'events'), 5000);

  const parts = (await adminA.query('SHOW PARTITIONS')).rows;
  const first = parts[0];
  const mid = (BigInt(first.lo) + BigInt(first.hi)) / 2n;
  const split = await adminA.query(`SPLIT PARTITION ${first.id} AT ${mid}`);
  assert.equal(split.command, 'SPLIT');
  const version = Number((await adminA.query('SHOW VERSION')).rows[0].routing_version);
  const { ms } = await eventually('B routes by the new version', async () => {
    const r = await adminB.query('EXPLAIN ROUTE SELECT * FROM events WHERE id = 1');
    return Number(r.rows[0].routing_version) === version;
  }, 1000);
  assert.ok(ms <= 1000, `B caught up in ${ms} ms`);
  const bParts = (await adminB.query('SHOW PARTITIONS')).rows;
  assert.equal(bParts.length, parts.length + 1);
  assert.ok(bParts.some((p) => p.lo === mid.toString()), 'B sees the new partition boundary');
  // A key in the new upper half is routed to the same shard by B, and lands there.
  const appB = await connect(b.port);
  let key = 0;
  for (let k = 1; k < 100000; k++) {
    const h = hashKey('int8', BigInt(k));
    if (h >= mid && h < BigInt(first.hi)) {
      key = k;
      break;
    }
  }
  await appB.query('INSERT INTO events (id, payload) VALUES ($1, $2)', [key, 'via B']);
  const direct = await (await shards[Number(first.shard)]!.client('app')).query('SELECT payload FROM events WHERE id = $1', [key]);
  assert.equal(direct.rows[0]?.payload, 'via B');

  // Both proxies are listed with the new version; A holds the lease (it started first).
  const proxies = await eventually('both proxies acked', async () => {
    const r = (await adminB.query('SHOW PROXIES')).rows;
    return r.length === 2 && r.every((p) => Number(p.routing_version) === version) ? r : undefined;
  }, 3000);
  const leader = proxies.value.find((p) => p.leader === 'true');
  assert.ok(leader, 'one proxy is the leader');

  // Kill the leader (A) hard: B marks it dead after its heartbeat lapses and takes the lease.
  a.proc.kill('SIGKILL');
  const dead = await eventually('A is marked dead', async () => {
    const r = (await adminB.query('SHOW PROXIES')).rows;
    const aRow = r.find((p) => p.this === 'false');
    return aRow?.state === 'dead' && r.find((p) => p.this === 'true')?.leader === 'true' ? r : undefined;
  }, 15000);
  assert.ok(dead.value.find((p) => p.this === 'true')!.leader === 'true', 'the lease moved to B');
  // A change now completes with B's ack alone: the dead proxy is excluded.
  const merge = await adminB.query(`MERGE PARTITIONS ${first.id}, ${bParts.find((p) => p.lo === mid.toString())!.id}`);
  assert.equal(merge.command, 'MERGE');
  b.proc.kill('SIGTERM');
});

test('a skewed workload through two proxies: load history equals the queries sent, hot partition on top, hot keys dominate samples', async () => {
  await (await catalog.client()).query('CREATE DATABASE cat2');
  const log = pino({ level: 'silent' });
  const base = {
    database: 'app', users: [{ name: 'app', password: 'app-password', admin: true }], auth: 'scram-sha-256' as const,
    pool: { mode: 'transaction' as const, size: 4, waitTimeoutMs: 10000, idleTimeoutMs: 60000 }, catalog: catalog.url('cat2'),
    shards: shards.map((s) => s.url('app')), tables: { sharded: [{ name: 'hits', key: 'id', type: 'int8' as const }], reference: [] },
    partitions: 8, routeCacheSize: 1000, logLevel: 'warn',
  };
  const proxies: RunningProxy[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      proxies.push(await runProxy({ ...base, listen: { host: '127.0.0.1', port: await freePort() }, http: { host: '127.0.0.1', port: 0 } }, log, { recordIntervalMs: 60_000 }));
    }
    const [p1, p2] = proxies as [RunningProxy, RunningProxy];
    const c1 = await connect(p1.port);
    const c2 = await connect(p2.port);
    await c1.query('CREATE TABLE IF NOT EXISTS hits (id bigint PRIMARY KEY, n int)');
    // Each proxy keeps its own interval; flush both so the history starts clean for our count.
    await p1.member.flush();
    await p2.member.flush();
    await (await catalog.client('cat2')).query('DELETE FROM pgtide.load_history; DELETE FROM pgtide.key_samples');
    const hot = [7, 8, 9];
    const expected = new Map<number, number>();
    const index = p1.server.routing();
    const table = index.table('hits')!;
    let sent = 0;
    for (let i = 0; i < 600; i++) {
      const id = i % 4 === 0 ? 1000 + i : hot[i % hot.length]!;
      const c = i % 2 === 0 ? c1 : c2;
      await c.query('SELECT n FROM hits WHERE id = $1', [id]);
      const part = index.partitionForKey(table, id).id;
      expected.set(part, (expected.get(part) ?? 0) + 1);
      sent++;
    }
    await p1.member.flush();
    await p2.member.flush();
    const cat = await catalog.client('cat2');
    const { rows } = await cat.query<{ partition_id: number; reads: number; proxies: string }>(
      'SELECT partition_id, sum(reads)::float8 AS reads, count(DISTINCT proxy_id) AS proxies FROM pgtide.load_history GROUP BY partition_id');
    const got = new Map(rows.map((r) => [r.partition_id, r.reads]));
    assert.deepEqual(got, expected, 'reads per partition equal the queries sent');
    assert.equal([...got.values()].reduce((a, b) => a + b, 0), sent);
    const hotPartition = index.partitionForKey(table, 7).id;
    const admin = await connect(p2.port, 'pgtide');
    const load = await admin.query('SHOW LOAD hits');
    assert.equal(Number(load.rows[0].partition), [...expected].sort((a, b) => b[1] - a[1])[0]![0], 'the hottest partition is on top');
    assert.ok(expected.get(hotPartition)! > 0);
    assert.ok(load.rows.some((r) => Number(r.proxies) === 2), 'history is summed across both proxies');
    const samples = await cat.query<{ key_text: string }>('SELECT key_text FROM pgtide.key_samples');
    const hotShare = samples.rows.filter((s) => ['7', '8', '9'].includes(s.key_text)).length / samples.rows.length;
    assert.ok(samples.rows.length > 100, `${samples.rows.length} samples`);
    assert.ok(hotShare > 0.6, `hot keys are ${Math.round(hotShare * 100)} % of the samples (75 % of accesses)`);
  } finally {
    for (const p of proxies) await p.stop();
  }
});

test('catalog unreachable: the proxy keeps routing, reports degraded, refuses routing changes, and catches up', async () => {
  // A catalog server of its own that this test can stop and start again with the same data.
  const { startEmbeddedServer } = await import('../../cli/embedded-server.js');
  const catDir = join(dir, 'catalog-restart');
  const catPort = await freePort();
  const start = () => startEmbeddedServer({ dataDir: catDir, port: catPort, user: 'postgres', password: 'pw' });
  let cat = await start();
  const log = pino({ level: 'silent' });
  const httpPort = await freePort();
  const proxy = await runProxy({
    listen: { host: '127.0.0.1', port: await freePort() }, database: 'app', users: [{ name: 'app', password: 'app-password', admin: true }],
    auth: 'scram-sha-256', pool: { mode: 'transaction', size: 4, waitTimeoutMs: 10000, idleTimeoutMs: 60000 }, catalog: cat.url('postgres'),
    shards: shards.map((s) => s.url('app')), tables: { sharded: [{ name: 'degraded_t', key: 'id', type: 'int8' }], reference: [] }, partitions: 4,
    http: { host: '127.0.0.1', port: httpPort }, routeCacheSize: 100, logLevel: 'warn',
  }, log, { heartbeatMs: 200 });
  try {
    const app = await connect(proxy.port);
    await app.query('CREATE TABLE IF NOT EXISTS degraded_t (id bigint PRIMARY KEY, v text)');
    await app.query("INSERT INTO degraded_t (id, v) VALUES (1, 'one') ON CONFLICT DO NOTHING");
    const health = async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status;
    assert.equal(await health(), 200);
    await cat.stop();
    await eventually('degraded', async () => (await health()) === 503, 5000);
    assert.equal((await app.query('SELECT v FROM degraded_t WHERE id = 1')).rows[0].v, 'one', 'routing goes on by the last version');
    const admin = await connect(proxy.port, 'pgtide');
    await assert.rejects(admin.query('SPLIT PARTITION 1'), (e: Error & { code?: string }) => e.code === '08006' && /unreachable/.test(e.message));
    const proxies = await admin.query('SHOW PROXIES');
    assert.equal(proxies.rows[0].state, 'degraded');
    cat = await start();
    await eventually('healthy again', async () => (await health()) === 200, 10000);
    const split = await admin.query('SPLIT PARTITION 1');
    assert.equal(split.command, 'SPLIT');
  } finally {
    await proxy.stop();
    await cat.stop();
  }
});

test('two concurrent routing changes: one wins, the other gets a conflict error, versions never fork', async () => {
  await (await catalog.client()).query('CREATE DATABASE cat3');
  const { Catalog } = await import('../../config/catalog.js');
  const c = await Catalog.open(catalog.url('cat3'));
  try {
    await c.ensureShards(shards.map((s) => s.url('app')));
    await c.shardTable('conflict_t', 'id', 'int8', { partitions: 4 });
    const before = (await c.loadRoutingTable()).version;
    const ids = (await c.loadRoutingTable()).partitions.map((p) => p.id);
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => c.splitPartition(ids[i % ids.length]!)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const conflicts = results.filter((r) => r.status === 'rejected' && (r.reason as { sqlstate?: string }).sqlstate === '55P03');
    assert.ok(ok >= 1, 'at least one change wins');
    assert.equal(ok + conflicts.length, 6, 'every loser got the conflict error');
    const t = await c.loadRoutingTable();
    assert.equal(t.version, before + ok, 'one version per winning change, no fork');
    const versions = await c.pool.query('SELECT version FROM pgtide.routing_versions ORDER BY version');
    const vs = versions.rows.map((r) => Number(r.version));
    assert.deepEqual(vs, [...new Set(vs)].sort((x, y) => x - y));
  } finally {
    await c.close();
  }
});
