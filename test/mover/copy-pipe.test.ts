// copyPipe between two connections: a COPY refused by either server rejects (it used to hang
// forever: pg drops its active query on an ErrorResponse, so the ReadyForQuery never reached the
// COPY submittable), and both connections are usable afterwards; rows that arrive before the
// target accepts them are buffered as copies (they were views into a reused receive buffer).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { copyPipe } from '../../mover/copy-protocol.js';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/postgres.js';

let server: TestServer;
let src: pg.Client;
let dst: pg.Client;

before(async () => {
  server = await startTestServer();
  src = await server.client();
  dst = await server.client();
  await src.query('CREATE TABLE pipe_src (id int8 PRIMARY KEY, v text); INSERT INTO pipe_src SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
  await src.query('CREATE TABLE pipe_dst (id int8 PRIMARY KEY, v text)');
});
after(() => stopAllTestServers());

/** Reject instead of hanging the test file when the pipe never settles. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`copyPipe did not settle within ${ms} ms`)), ms).unref())]);
}

test('a target that refuses the rows (duplicate key) rejects the pipe; the target can roll back and go on', async () => {
  await dst.query('TRUNCATE pipe_dst; INSERT INTO pipe_dst VALUES (10, \'already here\')');
  await dst.query('BEGIN');
  await assert.rejects(within(copyPipe(src, 'COPY (SELECT id, v FROM pipe_src ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN'), 30000),
    (err: Error & { code?: string }) => err.code === '23505');
  await within(dst.query('ROLLBACK'), 10000);
  assert.equal(Number((await dst.query('SELECT count(*) AS n FROM pipe_dst')).rows[0].n), 1);
  assert.equal((await src.query('SELECT 1 AS one')).rows[0].one, 1, 'the source connection is usable too');
});

test('a source that fails mid-COPY rejects the pipe; the target gets CopyFail and both connections go on', async () => {
  await dst.query('TRUNCATE pipe_dst');
  await dst.query('BEGIN');
  await assert.rejects(within(copyPipe(src, 'COPY (SELECT id, v || (1 / (id - 4000))::text FROM pipe_src ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN'), 30000),
    (err: Error & { code?: string }) => err.code === '22012');
  await within(dst.query('ROLLBACK'), 10000);
  assert.equal(Number((await dst.query('SELECT count(*) AS n FROM pipe_dst')).rows[0].n), 0);
  assert.equal((await src.query('SELECT 1 AS one')).rows[0].one, 1);
});

test('a clean pipe still reports rows, bytes and the last row', async () => {
  await dst.query('TRUNCATE pipe_dst');
  const r = await within(copyPipe(src, 'COPY (SELECT id, v FROM pipe_src ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN'), 30000);
  assert.equal(r.rows, 20000);
  assert.ok(r.bytes > 20000 * 30);
  assert.match(r.lastRow!.toString(), /^20000\t/);
  assert.equal(Number((await dst.query('SELECT count(*) AS n FROM pipe_dst')).rows[0].n), 20000);
});

const SUM = (t: string) => `SELECT count(*) AS n, md5(string_agg(id::text || ':' || v, ',' ORDER BY id)) AS sum FROM ${t}`;

test('rows that stream in before the target is ready are buffered intact', async () => {
  await dst.query('TRUNCATE pipe_dst');
  // The target's COPY waits behind this in pg's queue, so the source's rows arrive first and are buffered.
  const busy = dst.query('SELECT pg_sleep(0.5)');
  const r = await within(copyPipe(src, 'COPY (SELECT id, v FROM pipe_src ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN'), 30000);
  await busy;
  assert.equal(r.rows, 20000);
  assert.match(r.lastRow!.toString(), /^20000\t/);
  const [a, b] = [(await src.query(SUM('pipe_src'))).rows[0], (await dst.query(SUM('pipe_dst'))).rows[0]];
  assert.deepEqual(b, a, 'the target holds exactly the source rows');
});

test('rows longer than a CopyData stage (100 kB) pass whole, among short ones', async () => {
  await src.query('CREATE TABLE pipe_big (id int8 PRIMARY KEY, v text)');
  await src.query("INSERT INTO pipe_big SELECT g, CASE WHEN g % 3 = 0 THEN repeat(md5(g::text), 3200) ELSE md5(g::text) END FROM generate_series(1, 30) g");
  await dst.query('TRUNCATE pipe_dst');
  const r = await within(copyPipe(src, 'COPY (SELECT id, v FROM pipe_big ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN'), 30000);
  assert.equal(r.rows, 30);
  assert.match(r.lastRow!.toString(), /^30\t/);
  const [a, b] = [(await src.query(SUM('pipe_big'))).rows[0], (await dst.query(SUM('pipe_dst'))).rows[0]];
  assert.deepEqual(b, a);
});

test('a paced pipe holds its rate: the rows arrive intact and no faster than the pace allows', async () => {
  await dst.query('TRUNCATE pipe_dst');
  const t0 = performance.now();
  const unpaced = await within(copyPipe(src, 'COPY (SELECT id, v FROM pipe_src ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN'), 30000);
  const unpacedMs = performance.now() - t0;
  await dst.query('TRUNCATE pipe_dst');
  // A pace that needs about 1.2 s for the ~0.9 MB of rows, whatever the unpaced speed was.
  const bytesPerSec = unpaced.bytes / 1.2;
  const t1 = performance.now();
  const paced = await within(copyPipe(src, 'COPY (SELECT id, v FROM pipe_src ORDER BY id) TO STDOUT', dst, 'COPY pipe_dst (id, v) FROM STDIN', { bytesPerSec }), 30000);
  const pacedMs = performance.now() - t1;
  assert.equal(paced.rows, 20000);
  assert.equal(paced.bytes, unpaced.bytes);
  // The bucket lets a copy run PACE_SLACK_MS (5 ms) ahead, and the last socket read may carry ~64 kB past it.
  const floorMs = ((paced.bytes - 65536) / bytesPerSec) * 1000 - 5;
  assert.ok(pacedMs >= floorMs, `paced copy took ${pacedMs.toFixed(0)} ms, the pace allows no less than ${floorMs.toFixed(0)} ms (unpaced ${unpacedMs.toFixed(0)} ms)`);
  const [a, b] = [(await src.query(SUM('pipe_src'))).rows[0], (await dst.query(SUM('pipe_dst'))).rows[0]];
  assert.deepEqual(b, a, 'the target holds exactly the source rows');
});
