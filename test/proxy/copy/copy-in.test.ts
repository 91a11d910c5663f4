// Sharded COPY FROM STDIN through the proxy: text, CSV, binary, any chunking, errors with line numbers, all or nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../../helpers/cluster.js';
import { chunksOf, CopyClient } from '../../helpers/copy-client.js';

let cluster: TestCluster;
let app: pg.Client;
let shards: pg.Client[];
let copy: CopyClient;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 3 });
  app = await cluster.client();
  const admin = await cluster.admin();
  await app.query('CREATE TABLE events (id bigint PRIMARY KEY, body text, n int)');
  await admin.query('SHARD TABLE events BY (id)');
  await app.query('CREATE TABLE docs (k text PRIMARY KEY, note text, x int)');
  await admin.query('SHARD TABLE docs BY (k)');
  await app.query('CREATE TABLE countries (code text PRIMARY KEY, name text)');
  await admin.query('REFERENCE TABLE countries');
  shards = [await cluster.shard(0), await cluster.shard(1)];
  copy = await CopyClient.connect(cluster.proxy.port);
});
after(async () => {
  copy?.close();
  await cluster?.stop();
});

async function perShard(table: string): Promise<number[]> {
  return Promise.all(shards.map(async (s) => Number((await s.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)));
}

test('text COPY of 2000 rows in 7-byte chunks lands each row on its key\'s shard, one COPY count', async () => {
  await app.query('TRUNCATE events');
  let text = '';
  for (let i = 1; i <= 2000; i++) text += `${i}\tbody ${i} with \\t tab and \\\\ backslash\t${i * 2}\n`;
  const r = await copy.copyIn('COPY events FROM STDIN', chunksOf(Buffer.from(text), 7));
  assert.equal(r.error, null);
  assert.equal(r.tag, 'COPY 2000');
  assert.equal(r.status, 'I');
  const counts = await perShard('events');
  assert.equal(counts[0]! + counts[1]!, 2000);
  assert.ok(counts[0]! > 500 && counts[1]! > 500, `both shards hold rows: ${counts}`);
  // Every row is found by its key through the proxy (so it is on the shard its key routes to).
  for (const id of [1, 2, 3, 777, 1999, 2000]) {
    const row = await app.query('SELECT body, n FROM events WHERE id = $1', [id]);
    assert.deepEqual(row.rows, [{ body: `body ${id} with \t tab and \\ backslash`, n: id * 2 }]);
  }
});

test('CSV with HEADER, quotes, embedded newlines, custom delimiter/quote/escape/null and a column list', async () => {
  await app.query('TRUNCATE docs');
  const csv = [
    'x;note;k',
    "1;'plain';'alpha'",
    "2;'multi\nline\nnote';'beta'",
    "3;'has ;semicolon and \\'quote\\'';'gam;ma'",
    "NIL;'x is null';'delta'",
    "5;'';'epsilon'",
    '',
  ].join('\n');
  for (const size of [1, 3, 1000]) {
    await app.query('TRUNCATE docs');
    const r = await copy.copyIn("COPY docs (x, note, k) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'NIL')", chunksOf(Buffer.from(csv), size));
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.equal(r.tag, 'COPY 5');
  }
  const rows = await app.query('SELECT k, note, x FROM docs');
  // (sorted here: the rows come from two shards)
  assert.deepEqual(rows.rows.sort((a, b) => (a.k < b.k ? -1 : 1)), [
    { k: 'alpha', note: 'plain', x: 1 },
    { k: 'beta', note: 'multi\nline\nnote', x: 2 },
    { k: 'delta', note: 'x is null', x: null },
    { k: 'epsilon', note: '', x: 5 },
    { k: 'gam;ma', note: "has ;semicolon and 'quote'", x: 3 },
  ]);
  // Single-key reads route by hash: each row is where its key says.
  for (const k of ['alpha', 'beta', 'gam;ma', 'delta', 'epsilon']) assert.equal((await app.query('SELECT k FROM docs WHERE k = $1', [k])).rowCount, 1);
});

test('CSV with default quoting ("" inside quotes) and CRLF line ends', async () => {
  await app.query('TRUNCATE docs');
  const csv = 'k,note,x\r\n"a""b","say ""hi""\r\nthere",1\r\nplain,,2\r\n';
  const r = await copy.copyIn('COPY docs FROM STDIN (FORMAT csv, HEADER)', chunksOf(Buffer.from(csv), 2));
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.tag, 'COPY 2');
  const rows = await app.query('SELECT k, note, x FROM docs');
  assert.deepEqual(rows.rows.sort((a, b) => a.x - b.x), [{ k: 'a"b', note: 'say "hi"\r\nthere', x: 1 }, { k: 'plain', note: null, x: 2 }]);
});

/** A binary COPY file of (id bigint, body text, n int) rows. */
function binaryFile(rows: [bigint, string | null, number][]): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const [id, body, n] of rows) {
    const t = Buffer.alloc(2 + 4 + 8 + 4);
    t.writeInt16BE(3, 0);
    t.writeInt32BE(8, 2);
    t.writeBigInt64BE(id, 6);
    if (body === null) t.writeInt32BE(-1, 14);
    else t.writeInt32BE(Buffer.byteLength(body), 14);
    parts.push(t);
    if (body !== null) parts.push(Buffer.from(body));
    const nb = Buffer.alloc(8);
    nb.writeInt32BE(4, 0);
    nb.writeInt32BE(n, 4);
    parts.push(nb);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

test('binary COPY is split per tuple, each shard gets its own header and trailer', async () => {
  await app.query('TRUNCATE events');
  const rows: [bigint, string | null, number][] = [];
  for (let i = 1; i <= 500; i++) rows.push([BigInt(i), i % 7 === 0 ? null : `b${i}`, i]);
  const r = await copy.copyIn('COPY events FROM STDIN (FORMAT binary)', chunksOf(binaryFile(rows), 5));
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.tag, 'COPY 500');
  const counts = await perShard('events');
  assert.ok(counts[0]! > 100 && counts[1]! > 100);
  assert.deepEqual((await app.query('SELECT body, n FROM events WHERE id = 14')).rows, [{ body: null, n: 14 }]);
  assert.deepEqual((await app.query('SELECT body, n FROM events WHERE id = 15')).rows, [{ body: 'b15', n: 15 }]);
});

test('a key the proxy cannot parse fails the whole COPY with Postgres\'s error and line; no shard keeps rows', async () => {
  await app.query('TRUNCATE events');
  let text = '';
  for (let i = 1; i <= 300; i++) text += `${i}\tok\t1\n`;
  text += 'abc\tbad key\t1\n';
  for (let i = 301; i <= 400; i++) text += `${i}\tok\t1\n`;
  const r = await copy.copyIn('COPY events FROM STDIN', chunksOf(Buffer.from(text), 100));
  assert.equal(r.tag, null);
  assert.equal(r.error?.C, '22P02');
  assert.equal(r.error?.M, 'invalid input syntax for type bigint: "abc"');
  assert.equal(r.error?.W, 'COPY events, line 301, column id: "abc"');
  assert.equal(r.status, 'I');
  assert.deepEqual(await perShard('events'), [0, 0]);
});

test('a row a shard rejects reports the client\'s line number, and every shard rolls back', async () => {
  await app.query('TRUNCATE events');
  let text = '';
  for (let i = 1; i <= 1000; i++) text += i === 777 ? `${i}\tbad n\tnot-a-number\n` : `${i}\tok\t${i}\n`;
  const r = await copy.copyIn('COPY events FROM STDIN', chunksOf(Buffer.from(text), 8192));
  assert.equal(r.error?.C, '22P02');
  assert.match(r.error?.W ?? '', /^COPY events, line 777, column n: "not-a-number"/);
  assert.equal(r.status, 'I');
  assert.deepEqual(await perShard('events'), [0, 0]);
  // A missing key column is the proxy's to report, in Postgres's words.
  const m = await copy.copyIn('COPY events FROM STDIN', [Buffer.from('1\ta\t1\n\n')]);
  assert.equal(m.error?.C, '22P02');
  const d = await copy.copyIn('COPY docs (note, x) FROM STDIN', [Buffer.from('a\t1\n')]);
  assert.equal(d.copyIn, false);
  assert.equal(d.error?.C, '0A000');
  // The session is fine afterwards.
  assert.equal((await copy.copyIn('COPY events FROM STDIN', [Buffer.from('5\tfive\t5\n')])).tag, 'COPY 1');
});

test('CopyFail from the client aborts every shard', async () => {
  await app.query('TRUNCATE events');
  const r = await copy.copyIn('COPY events FROM STDIN', [Buffer.from('1\ta\t1\n2\tb\t2\n3\tc\t3\n')], { fail: 'user cancelled' });
  assert.equal(r.error?.C, '57014');
  assert.match(r.error?.M ?? '', /user cancelled/);
  assert.deepEqual(await perShard('events'), [0, 0]);
});

test('COPY into a reference table writes every row to every shard', async () => {
  const r = await copy.copyIn('COPY countries FROM STDIN (FORMAT csv)', chunksOf(Buffer.from('fr,France\nde,Germany\nit,Italy\n'), 4));
  assert.equal(r.error, null);
  assert.equal(r.tag, 'COPY 3');
  assert.deepEqual(await perShard('countries'), [3, 3]);
});

test('a table whose key is not the first column, without a column list: the order comes from the catalog', async () => {
  await app.query('CREATE TABLE late_key (a text, b int, id int PRIMARY KEY)');
  await app.query('ALTER TABLE late_key DROP COLUMN b');
  await (await cluster.admin()).query('SHARD TABLE late_key BY (id)');
  let text = '';
  for (let i = 1; i <= 200; i++) text += `row${i}\t${i}\n`;
  const r = await copy.copyIn('COPY public.late_key FROM STDIN', [Buffer.from(text)]);
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.tag, 'COPY 200');
  const counts = await perShard('late_key');
  assert.ok(counts[0]! > 0 && counts[1]! > 0);
  assert.deepEqual((await app.query('SELECT a FROM late_key WHERE id = 123')).rows, [{ a: 'row123' }]);
});
