// KNOWN GAP (todo): only the proxy that runs the mover (the leader) holds traffic during a cutover.
// Another proxy relies on the fence: a statement that hits it is retried on the new owner only
// when it is the first of its transaction. So on a non-leader proxy, a transaction that read the
// range (or wrote another shard) first and writes the range after the fence went up gets PT001,
// where DESIGN.md promises held (delayed, not failed) statements on every proxy.
// Remove `todo` when every live proxy holds the range (and acks it) before the fence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import { hashKey } from '../../config/hash.js';
import { Mover } from '../../mover/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let other: RunningProxy;
const clients: pg.Client[] = [];

before(async () => {
  cluster = await startTestCluster({ shards: 2 });
  const app = await cluster.client();
  await app.query('CREATE TABLE nl (id bigint PRIMARY KEY, n int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE nl BY (id) PARTITIONS 2');
  await app.query(`INSERT INTO nl (id, n) VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 0)`).join(', ')}`);
  other = await runProxy({ ...cluster.config, listen: { host: '127.0.0.1', port: await freePort() } }, pino({ level: 'silent' }), { runJobs: false });
});
after(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await other?.stop().catch(() => {});
  await cluster?.stop();
});

test('a transaction on a non-leader proxy that reaches the moving range after the fence is held, not failed', { todo: 'only the leader proxy holds traffic during a cutover' }, async () => {
  const routing = await cluster.proxy.catalog.loadRoutingTable();
  const ks = routing.tables.find((t) => t.name === 'nl')!.keyspaceId!;
  const part = routing.partitions.find((p) => p.keyspaceId === ks && p.shardId === 0)!;
  const inPart = (k: number) => hashKey('int8', k) >= part.lo && hashKey('int8', k) < part.hi;
  const keyIn = Array.from({ length: 100 }, (_, i) => i + 1).find(inPart)!;
  const c = new pg.Client({ host: '127.0.0.1', port: other.port, user: 'app', password: 'app-password', database: 'app', query_timeout: 60000 });
  c.on('error', () => {});
  clients.push(c);
  await c.connect();
  let outcome: string | null = null;
  let began = false;
  const mover = new Mover({
    catalog: cluster.proxy.catalog, routing: cluster.proxy.mover.routing, settings: { graceMs: 100, cutoverBudgetMs: 5000 },
    hooks: {
      async onStep(_job, step) {
        if (step === 'state:cutover' && !began) {
          // Read-modify-write: the read takes no lock that the fence's LOCK TABLE waits for.
          began = true;
          await c.query('BEGIN');
          await c.query('SELECT n FROM nl WHERE id = $1', [keyIn]);
        }
        if (step === 'cutover:drainFinalChanges') {
          // The source is fenced and the routing not yet switched: the statement should wait.
          void c.query('UPDATE nl SET n = n + 1 WHERE id = $1', [keyIn]).then(() => (outcome = 'ran'), (e: Error & { code?: string }) => (outcome = `${e.code}: ${e.message}`));
          await new Promise((r) => setTimeout(r, 500));
        }
      },
    },
  });
  try {
    const job = await mover.runJob((await mover.startMove(part.id, 1)).id);
    assert.equal(job.state, 'done');
  } finally {
    await mover.close();
  }
  const deadline = Date.now() + 30000;
  while (outcome === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(outcome, 'ran', 'the write to the moving range was held and then ran on the new owner');
  await c.query('COMMIT');
});
