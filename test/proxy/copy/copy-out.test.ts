// COPY TO STDOUT concatenated across shards (text, CSV header once, binary one header/trailer), psql \copy both ways, bounded memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../../helpers/cluster.js';
import { CopyClient } from '../../helpers/copy-client.js';

let cluster: TestCluster;
let app: pg.Client;
let copy: CopyClient;
const hasPsql = spawnSync('psql', ['--version']).status === 0;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 3 });
  app = await cluster.client();
  await app.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
  await (await cluster.admin()).query('SHARD TABLE items BY (id)');
  const values = Array.from({ length: 100 }, (_, i) => `(${i + 1}, 'item ${i + 1}')`).join(', ');
  await app.query(`INSERT INTO items (id, name) VALUES ${values}`);
  copy = await CopyClient.connect(cluster.proxy.port);
});
after(async () => {
  copy?.close();
  await cluster?.stop();
});

function sortedLines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '').sort();
}

test('COPY TO STDOUT concatenates every shard in text and CSV (the header once)', async () => {
  const text = await copy.query('COPY items TO STDOUT');
  assert.equal(text.error, null);
  assert.equal(text.tag, 'COPY 100');
  assert.equal(sortedLines(text.data.toString()).length, 100);
  assert.ok(text.data.toString().includes('42\titem 42\n'));
  const csv = await copy.query('COPY items TO STDOUT (FORMAT csv, HEADER)');
  assert.equal(csv.tag, 'COPY 100');
  const lines = csv.data.toString().split('\n');
  assert.equal(lines[0], 'id,name');
  assert.equal(lines.filter((l) => l === 'id,name').length, 1);
  assert.equal(lines.filter((l) => l !== '').length, 101);
  const q = await copy.query('COPY (SELECT id FROM items WHERE id <= 10) TO STDOUT');
  assert.equal(q.tag, 'COPY 10');
  assert.deepEqual(sortedLines(q.data.toString()).map(Number).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test('binary COPY TO has one header and one trailer, and loads back through the proxy', async () => {
  const bin = await copy.query('COPY items TO STDOUT (FORMAT binary)');
  assert.equal(bin.tag, 'COPY 100');
  const d = bin.data;
  assert.equal(d.indexOf(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')), 0);
  assert.equal(d.indexOf(Buffer.from('PGCOPY', 'latin1'), 1), -1);
  assert.deepEqual([...d.subarray(d.length - 2)], [0xff, 0xff]);
  await app.query('CREATE TABLE items2 (id int PRIMARY KEY, name text)');
  await (await cluster.admin()).query('SHARD TABLE items2 BY (id)');
  const r = await copy.copyIn('COPY items2 FROM STDIN (FORMAT binary)', [d]);
  assert.equal(r.tag, 'COPY 100');
  assert.deepEqual((await app.query('SELECT name FROM items2 WHERE id = 77')).rows, [{ name: 'item 77' }]);
});

test('psql \\copy both ways through the proxy', { skip: hasPsql ? false : 'psql not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-copy-'));
  try {
    const file = join(dir, 'in.csv');
    let csv = 'id,name\n';
    for (let i = 1; i <= 5000; i++) csv += `${1000 + i},"name, ${i}\nsecond line"\n`;
    writeFileSync(file, csv);
    const env = { ...process.env, PGCONNECT_TIMEOUT: '10' };
    // Asynchronously: the proxy runs in this process.
    const run = async (cmd: string) => (await promisify(execFile)('psql', [cluster.url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', cmd], { env, encoding: 'utf8' })).stdout;
    assert.match(await run(`\\copy items FROM '${file}' WITH (FORMAT csv, HEADER)`), /COPY 5000/);
    assert.deepEqual((await app.query('SELECT name FROM items WHERE id = 1777')).rows, [{ name: 'name, 777\nsecond line' }]);
    const out = join(dir, 'out.csv');
    assert.match(await run(`\\copy items TO '${out}' WITH (FORMAT csv, HEADER)`), /COPY 5100/);
    const got = readFileSync(out, 'utf8');
    assert.equal(got.split('\n')[0], 'id,name');
    assert.equal(got.match(/^id,name$/gm)?.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('memory stays flat while streaming rows: heap does not grow with the number of rows', { timeout: 180_000 }, async () => {
  setFlagsFromString('--expose_gc');
  const gc = runInNewContext('gc') as () => void;
  await app.query('CREATE TABLE stream (id bigint PRIMARY KEY, pad text)');
  await (await cluster.admin()).query('SHARD TABLE stream BY (id)');
  const CHUNKS = 300;
  const ROWS = 1000;
  const heap: number[] = [];
  async function* gen() {
    for (let c = 0; c < CHUNKS; c++) {
      if (c === CHUNKS / 4 || c === CHUNKS - 1) {
        await new Promise((r) => setTimeout(r, 50));
        gc();
        heap.push(process.memoryUsage().heapUsed);
      }
      let s = '';
      for (let i = 0; i < ROWS; i++) s += `${c * ROWS + i}\tpadding-padding-padding-padding\n`;
      yield Buffer.from(s);
    }
  }
  const r = await copy.copyIn('COPY stream FROM STDIN', gen());
  assert.equal(r.tag, `COPY ${CHUNKS * ROWS}`);
  // ~22 MB streamed between the two samples; the proxy (in this process) keeps none of it.
  const growth = heap[1]! - heap[0]!;
  assert.ok(growth < 8 * 1024 * 1024, `heap grew ${(growth / 1048576).toFixed(1)} MB`);
});
