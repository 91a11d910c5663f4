// `npm start` (the embedded cluster): ADD SHARD without a URL starts one more server under the data
// directory, a partition moves onto it, and a restart brings it back with its rows.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../cli/embedded-server.js';

const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const children = new Set<ChildProcess>();
const dirs: string[] = [];

function exited(proc: ChildProcess, timeoutMs = 60_000): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve(null);
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

after(async () => {
  // SIGTERM first: pgtide then stops the Postgres servers it started (SIGKILL would orphan them).
  for (const c of children) c.kill('SIGTERM');
  await Promise.all([...children].map((c) => exited(c, 30_000)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function start(args: string[]): { proc: ChildProcess; ready: Promise<string>; stderr: () => string } {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGTIDE_LOG_LEVEL: 'warn' } });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /pgtide ready: (postgres:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.on('exit', (code) => reject(new Error(`pgtide exited with ${code} before it was ready: ${stderr.slice(-2000)}`)));
  });
  ready.catch(() => {});
  return { proc, ready, stderr: () => stderr };
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

test('embedded cluster: ADD SHARD starts a server, a partition moves onto it, a restart brings it back', { timeout: 300_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pgtide-add-shard-'));
  dirs.push(dataDir);
  const args = ['--data-dir', dataDir, '--port', String(await freePort()), '--http-port', String(await freePort()), '--shards', '1'];
  const first = start(args);
  const url = await first.ready;
  const adminUrl = url.replace(/\/app$/, '/pgtide');
  const app = await connect(url);
  const admin = await connect(adminUrl);
  try {
    await app.query('CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL)');
    await admin.query('SHARD TABLE t BY (id) PARTITIONS 4');
    await app.query(`INSERT INTO t (id, v) VALUES ${Array.from({ length: 200 }, (_, i) => `(${i + 1}, ${(i * 7) % 13})`).join(', ')}`);
    const sum = Array.from({ length: 200 }, (_, i) => (i * 7) % 13).reduce((a, b) => a + b, 0);

    const added = await admin.query('ADD SHARD');
    assert.deepEqual(added.rows.map((r) => [r.shard, r.state]), [['1', 'active']]);
    const shards = await admin.query('SHOW SHARDS');
    assert.deepEqual(shards.rows.map((r) => [r.id, r.state]), [['0', 'active'], ['1', 'active']]);
    const file = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as { shardPorts: number[] };
    assert.equal(file.shardPorts.length, 2, 'the new server is in cluster.json');

    // The new shard takes a partition (the leader's job loop runs the move).
    const part = (await admin.query('SHOW PARTITIONS')).rows.find((p) => p.shard === '0')!;
    assert.ok(part, 'a partition on shard 0');
    const job = Number((await admin.query(`MOVE PARTITION ${part.id} TO SHARD 1`)).rows[0].job);
    const deadline = Date.now() + 180_000;
    for (;;) {
      const state = Object.fromEntries((await admin.query(`SHOW JOB ${job}`)).rows.map((r) => [r.field, r.value])).state;
      if (state === 'done') break;
      assert.ok(!['failed', 'paused', 'rolled_back'].includes(state), `job ${job} is ${state}`);
      assert.ok(Date.now() < deadline, `job ${job} still ${state}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const direct = await connect(`postgres://${new URL(url).username}:${new URL(url).password}@127.0.0.1:${file.shardPorts[1]}/app`);
    const onNew = Number((await direct.query('SELECT count(*) AS n FROM t')).rows[0].n);
    await direct.end();
    assert.ok(onNew > 0, 'rows moved onto the new server');

    await app.end();
    await admin.end();
    first.proc.kill('SIGTERM');
    assert.equal(await exited(first.proc), 0, first.stderr().slice(-3000));

    const second = start(args);
    const again = await second.ready;
    const app2 = await connect(again);
    const admin2 = await connect(adminUrl);
    const after2 = await admin2.query('SHOW SHARDS');
    assert.deepEqual(after2.rows.map((r) => [r.id, r.state]), [['0', 'active'], ['1', 'active']]);
    const total = (await app2.query('SELECT count(*) AS n, sum(v) AS s FROM t')).rows[0];
    assert.equal(Number(total.n), 200, 'every row, the moved ones on the restarted new server included');
    assert.equal(Number(total.s), sum);
    await app2.end();
    await admin2.end();
    second.proc.kill('SIGTERM');
    assert.equal(await exited(second.proc), 0, second.stderr().slice(-3000));
  } finally {
    await app.end().catch(() => {});
    await admin.end().catch(() => {});
  }
});
