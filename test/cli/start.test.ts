// The `pgtide` command: embedded cluster start, ready line, restart with the same data, clean stop, config errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../cli/embedded-server.js';

const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function start(args: string[]): { proc: ChildProcess; ready: Promise<{ url: string; lines: string[] }> } {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  const lines: string[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<{ url: string; lines: string[] }>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const m = /^pgtide ready: (postgres:\/\/\S+)$/.exec(line);
        if (m) resolve({ url: m[1]!, lines });
      }
    });
    proc.on('exit', (code) => reject(new Error(`pgtide exited with ${code} before it was ready: ${stderr.slice(-2000)}`)));
  });
  ready.catch(() => {});
  return { proc, ready };
}

function exited(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    else proc.once('exit', (code) => resolve(code));
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

test('embedded start prints the URL within 30 s, serves, stops on SIGTERM, and a restart reuses the data', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pgtide-start-'));
  dirs.push(dataDir);
  const port = await freePort();
  const args = ['--data-dir', dataDir, '--port', String(port), '--http-port', String(await freePort()), '--shards', '2'];
  const t0 = Date.now();
  const first = start(args);
  const { url, lines } = await first.ready;
  assert.ok(Date.now() - t0 < 30000, `ready in ${Date.now() - t0} ms`);
  assert.match(url, new RegExp(`^postgres://app:[^@]+@127\\.0\\.0\\.1:${port}/app$`));
  assert.ok(lines.some((l) => l.startsWith('catalog: postgres://')), 'prints the catalog URL');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE TABLE survivors (id bigint, note text)');
  await c.query("INSERT INTO survivors (id, note) VALUES (1, 'still here')");
  await c.end();
  const cluster = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as { catalogPort: number; shardPorts: number[] };
  assert.equal(cluster.shardPorts.length, 2);
  first.proc.kill('SIGTERM');
  assert.equal(await exited(first.proc), 0);
  for (const p of [port, cluster.catalogPort, ...cluster.shardPorts]) assert.equal(await portOpen(p), false, `port ${p} is closed after stop`);

  const second = start(args);
  const again = await second.ready;
  assert.equal(again.url, url, 'same credentials after restart');
  const c2 = new pg.Client({ connectionString: again.url });
  await c2.connect();
  const r = await c2.query('SELECT note FROM survivors WHERE id = 1');
  assert.equal(r.rows[0].note, 'still here');
  await c2.end();
  second.proc.kill('SIGINT');
  assert.equal(await exited(second.proc), 0);
});

test('an invalid config file names the key and exits with code 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-config-'));
  dirs.push(dir);
  const cases: [string, RegExp][] = [
    ['database: app\nusers: []\ncatalog: postgres://x@h/db\nshards: [postgres://x@h/db]\n', /users: must list at least one user/],
    ['database: app\nusers: [{name: a, password: b}]\ncatalog: postgres://x@h/db\nshards: [postgres://x@h/db]\npool: {mode: turbo}\n', /pool\.mode: must be transaction or session/],
    ['database: app\nusers: [{name: a, password: b}]\ncatalog: mysql://x@h/db\nshards: [postgres://x@h/db]\n', /catalog: must be a postgres:\/\/ URL/],
    ['database: app\nusers: [{name: a, password: b}]\ncatalog: postgres://x@h/db\nshards: [postgres://x@h/db]\ntables: {sharded: [{name: t, key: id, type: float8}]}\n', /tables\.sharded\[0\]\.type: unsupported key type/],
    ['database: app\nusers: [{name: a, password: b}]\ncatalog: postgres://x@h/db\nshards: [postgres://x@h/db]\nlisten: {port: 99999}\n', /listen\.port: must be between 1 and 65535/],
    ['database: app\nusers: [{name: a, password: b}]\ncatalog: postgres://x@h/db\nshards: [postgres://x@h/db]\npool: {pipelining: "on"}\n', /pool\.pipelining: must be true or false, got "on"/],
    ['database: app\nbogus_key: 1\n', /bogus_key: unknown key/],
    ['database: [unclosed\n', /invalid YAML/],
  ];
  for (const [i, [text, expected]] of cases.entries()) {
    const file = join(dir, `bad-${i}.yaml`);
    writeFileSync(file, text);
    const { proc } = start(['--config', file]);
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.equal(await exited(proc), 2, `case ${i} exits 2`);
    assert.match(stderr, expected, `case ${i}: ${stderr}`);
  }
  const { proc } = start(['--no-such-flag']);
  assert.equal(await exited(proc), 2);
});

test('the example config in the repository is valid', async () => {
  const { loadConfigFile } = await import('../../config/config-file.js');
  const example = fileURLToPath(new URL('../../../pgtide.example.yaml', import.meta.url));
  const cfg = loadConfigFile(example);
  assert.equal(cfg.pool.mode, 'transaction');
  assert.ok(cfg.shards.length >= 2);
  assert.ok(cfg.tables.sharded.length >= 1);
});
