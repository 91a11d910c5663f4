// ChunkCopier: backfill chunks copied by a worker thread on per-job connections commit rows and
// checkpoint together, resume from a checkpoint, and report a refused chunk with its SQLSTATE;
// the next chunk runs on fresh connections; release() ends a job's connections, the worker stays.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { ensureMoverSchema, MOVER_SCHEMA } from '../../mover/capture.js';
import { ChunkCopier } from '../../mover/copier.js';
import type { Checkpoint } from '../../mover/backfill.js';
import type { MoveTable } from '../../mover/shards.js';
import { HASH_END, HASH_MIN } from '../../config/types.js';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/postgres.js';

let server: TestServer;
let src: pg.Client;
let dst: pg.Client;
const table: MoveTable = { name: 'acct', keyColumn: 'id', keyType: 'int8', columns: ['id', 'v'], keyIndex: 0 };
const all = { lo: HASH_MIN, hi: HASH_END };

before(async () => {
  server = await startTestServer();
  const admin = await server.client();
  await admin.query('CREATE DATABASE copier_src');
  await admin.query('CREATE DATABASE copier_dst');
  src = await server.client('copier_src');
  dst = await server.client('copier_dst');
  await src.query('CREATE TABLE acct (id int8 PRIMARY KEY, v text); INSERT INTO acct SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
  await dst.query('CREATE TABLE acct (id int8 PRIMARY KEY, v text)');
  await ensureMoverSchema(dst);
});
after(() => stopAllTestServers());

const ends = () => ({ srcUrl: server.url('copier_src'), dstUrl: server.url('copier_dst') });

/** The copier's sessions on the server, waited for until `want` (a backend leaves a moment after its client hung up). */
async function sessions(want: number): Promise<number> {
  let n = -1;
  for (let i = 0; i < 30 && n !== want; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    n = (await src.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'copier-test'`)).rows[0].n;
  }
  return n;
}

const SUM = 'SELECT count(*)::int AS n, md5(string_agg(id::text || v, \',\' ORDER BY id)) AS sum FROM acct';

test('chunks copied in the worker land with their checkpoint, and the copy ends with the source\'s rows', async () => {
  const copier = new ChunkCopier({ appName: 'copier-test' });
  try {
    let cp: Checkpoint = { lastKey: null, done: false, rows: 0, bytes: 0 };
    const sizes: number[] = [];
    while (!cp.done) {
      const before = cp.rows;
      cp = await copier.copyChunk(7, ends(), table, all, cp, 1500);
      sizes.push(cp.rows - before);
      const state = await dst.query(`SELECT last_key, rows::int FROM ${MOVER_SCHEMA}.copy_state WHERE job_id = 7 AND tbl = 'acct'`);
      assert.deepEqual(state.rows[0], { last_key: cp.lastKey, rows: cp.rows }, 'the checkpoint is committed with the chunk');
    }
    assert.deepEqual(sizes, [1500, 1500, 1500, 500]);
    assert.equal(cp.lastKey, '5000');
    assert.deepEqual((await dst.query(SUM)).rows[0], (await src.query(SUM)).rows[0]);
  } finally {
    await copier.close();
  }
});

test('a chunk the target refuses rejects with the server\'s SQLSTATE and commits nothing; the next chunk works', async () => {
  await dst.query('TRUNCATE acct');
  await dst.query(`DELETE FROM ${MOVER_SCHEMA}.copy_state`);
  await dst.query(`INSERT INTO acct VALUES (10, 'already here')`);
  const copier = new ChunkCopier({ appName: 'copier-test' });
  try {
    const start: Checkpoint = { lastKey: null, done: false, rows: 0, bytes: 0 };
    await assert.rejects(copier.copyChunk(8, ends(), table, all, start, 100), (err: Error & { code?: string }) => err.code === '23505' && /duplicate key/.test(err.message));
    assert.equal((await dst.query('SELECT count(*)::int AS n FROM acct')).rows[0].n, 1, 'nothing of the refused chunk committed');
    assert.equal((await dst.query(`SELECT count(*)::int AS n FROM ${MOVER_SCHEMA}.copy_state WHERE job_id = 8`)).rows[0].n, 0);
    await dst.query('DELETE FROM acct WHERE id = 10');
    const cp = await copier.copyChunk(8, ends(), table, all, start, 100);
    assert.equal(cp.rows, 100);
    assert.equal(cp.lastKey, '100');
    await copier.release(8);
    assert.equal(await sessions(0), 0, 'release() ended the job\'s connections');
    // The worker stays for the next job.
    const again = await copier.copyChunk(9, ends(), table, all, { lastKey: '100', done: false, rows: 0, bytes: 0 }, 50);
    assert.equal(again.lastKey, '150');
  } finally {
    await copier.close();
  }
  assert.equal(await sessions(0), 0, 'close() ended the worker\'s connections');
});
