// Transactions across shards with two-phase commit: atomic commit and rollback, and recovery after a proxy crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../cli/embedded-server.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { killAllPgtideProcesses, startPgtideProcess } from '../helpers/pgtide-process.js';

let cluster: TestCluster;
let keyOn: [number, number];
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgtide-2pc-'));
  cluster = await startTestCluster({ shards: 2, twoPhaseCommit: true });
  const app = await cluster.client();
  await app.query('CREATE TABLE ledger (id bigint PRIMARY KEY, amount int NOT NULL CHECK (amount >= 0))');
  await (await cluster.admin()).query('SHARD TABLE ledger BY (id)');
  const admin = await cluster.admin();
  const owner = async (k: number) => Number((await admin.query(`EXPLAIN ROUTE SELECT * FROM ledger WHERE id = ${k}`)).rows[0].shards);
  let a = 0;
  let b = 0;
  for (let k = 1; k < 100 && (!a || !b); k++) {
    const s = await owner(k);
    if (s === 0 && !a) a = k;
    if (s === 1 && !b) b = k;
  }
  keyOn = [a, b];
  for (const k of keyOn) await app.query('INSERT INTO ledger (id, amount) VALUES ($1, 100)', [k]);
});
after(async () => {
  killAllPgtideProcesses();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function amounts(): Promise<number[]> {
  const out: number[] = [];
  for (const [i, k] of keyOn.entries()) {
    const r = await (await cluster.shard(i)).query('SELECT amount FROM ledger WHERE id = $1', [k]);
    out.push(r.rows[0].amount);
  }
  return out;
}

test('a transfer across two shards commits on both, with no prepared transaction left behind', async () => {
  const c = await cluster.client();
  await c.query('BEGIN');
  await c.query('UPDATE ledger SET amount = amount - 30 WHERE id = $1', [keyOn[0]]);
  await c.query('UPDATE ledger SET amount = amount + 30 WHERE id = $1', [keyOn[1]]);
  await c.query('COMMIT');
  assert.deepEqual(await amounts(), [70, 130]);
  for (const i of [0, 1]) {
    const r = await (await cluster.shard(i)).query('SELECT count(*)::int AS n FROM pg_prepared_xacts');
    assert.equal(r.rows[0].n, 0);
  }
  const admin = await cluster.admin();
  assert.equal((await admin.query('SHOW TRANSACTIONS')).rows.length, 0);
});

test('a failure on one shard rolls back the other; ROLLBACK undoes both', async () => {
  const c = await cluster.client();
  await c.query('BEGIN');
  await c.query('UPDATE ledger SET amount = amount + 1000 WHERE id = $1', [keyOn[0]]);
  await assert.rejects(c.query('UPDATE ledger SET amount = amount - 1000 WHERE id = $1', [keyOn[1]]), (e: Error & { code?: string }) => e.code === '23514');
  await assert.rejects(c.query('SELECT 1'), (e: Error & { code?: string }) => e.code === '25P02');
  const r = await c.query('COMMIT');
  assert.equal(r.command, 'ROLLBACK', 'COMMIT of a failed transaction rolls back');
  assert.deepEqual(await amounts(), [70, 130]);
  await c.query('BEGIN');
  await c.query('UPDATE ledger SET amount = 0 WHERE id = $1', [keyOn[0]]);
  await c.query('UPDATE ledger SET amount = 0 WHERE id = $1', [keyOn[1]]);
  await c.query('ROLLBACK');
  assert.deepEqual(await amounts(), [70, 130]);
});

test('savepoints span the shards of the transaction; extended-protocol COMMIT works', async () => {
  const c = await cluster.client();
  await c.query('BEGIN');
  await c.query('UPDATE ledger SET amount = amount + 1 WHERE id = $1', [keyOn[0]]);
  await c.query('UPDATE ledger SET amount = amount + 1 WHERE id = $1', [keyOn[1]]);
  await c.query('SAVEPOINT s1');
  await c.query('UPDATE ledger SET amount = amount + 500 WHERE id = $1', [keyOn[0]]);
  await c.query('UPDATE ledger SET amount = amount + 500 WHERE id = $1', [keyOn[1]]);
  await c.query('ROLLBACK TO SAVEPOINT s1');
  await c.query({ name: 'commit-stmt', text: 'COMMIT' });
  assert.deepEqual(await amounts(), [71, 131]);
});

test('without two-phase commit a second shard in a transaction is refused with 0A000', async () => {
  const c = await cluster.client();
  await c.query('SET pgtide.two_phase_commit = off');
  await c.query('BEGIN');
  await c.query('UPDATE ledger SET amount = amount WHERE id = $1', [keyOn[0]]);
  await assert.rejects(c.query('UPDATE ledger SET amount = amount WHERE id = $1', [keyOn[1]]), (e: Error & { code?: string; hint?: string }) => e.code === '0A000' && /two_phase_commit/.test(e.hint ?? ''));
  await c.query('ROLLBACK');
  await assert.rejects(c.query('SET pgtide.two_phase_commit = maybe'), (e: Error & { code?: string }) => e.code === '22023');
});

for (const [when, expectCommitted] of [['after-prepare', false], ['after-decision', true]] as const) {
  test(`a proxy killed ${when}: the leader (or the next proxy to start) resolves it, ${expectCommitted ? 'committed' : 'rolled back'} on every shard`, async () => {
    const before = await amounts();
    const file = join(dir, `${when}.yaml`);
    writeFileSync(file, [
      `listen: {host: 127.0.0.1, port: ${await freePort()}}`,
      'database: app',
      'users: [{name: app, password: app-password, admin: true}]',
      `catalog: ${cluster.config.catalog}`,
      `shards: [${cluster.config.shards.join(', ')}]`,
      'http: {host: 127.0.0.1, port: 0}',
      'two_phase_commit: true',
    ].join('\n') + '\n');
    const crashing = await startPgtideProcess(['--config', file], { PGTIDE_TEST_CRASH: when });
    const c = new pg.Client({ host: '127.0.0.1', port: crashing.port, user: 'app', password: 'app-password', database: 'app' });
    c.on('error', () => {});
    await c.connect();
    await c.query('BEGIN');
    await c.query('UPDATE ledger SET amount = amount - 5 WHERE id = $1', [keyOn[0]]);
    await c.query('UPDATE ledger SET amount = amount + 5 WHERE id = $1', [keyOn[1]]);
    await assert.rejects(c.query('COMMIT'), 'the proxy dies during COMMIT');
    await new Promise<void>((r) => (crashing.proc.exitCode !== null ? r() : crashing.proc.once('exit', () => r())));
    const prepared = async () => {
      let n = 0;
      for (const i of [0, 1]) n += (await (await cluster.shard(i)).query('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0].n;
      return n;
    };
    assert.equal(await prepared(), 2, 'both shards hold the prepared transaction (in doubt)');
    // The in-process proxy of the test cluster is the leader: its recovery pass resolves them.
    const deadline = Date.now() + 30000;
    while ((await prepared()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    assert.equal(await prepared(), 0, 'recovery resolved the in-doubt transaction on every shard');
    const after = await amounts();
    assert.deepEqual(after, expectCommitted ? [before[0]! - 5, before[1]! + 5] : before, 'all or nothing');
  });
}
