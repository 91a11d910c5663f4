// Checks pgtide's SCRAM and md5 secrets against what a real Postgres 15 stores in pg_authid, and logs a pg client in with them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/postgres.js';
import { ScramClientSession, ScramServerSession, makeScramSecret, parseScramSecret, verifyScramPassword } from '../../../proxy/auth/scram.js';
import { md5PasswordHash } from '../../../proxy/auth/md5.js';
import { startTinyServer } from './tiny-server.js';

let server: TestServer;
let admin: pg.Client;
let pgSecret: string;

before(async () => {
  server = await startTestServer({ authMethod: 'scram-sha-256', password: 'real-pw' });
  admin = await server.client();
  await admin.query("CREATE ROLE u_scram LOGIN PASSWORD 'naïve pässword'");
  await admin.query("SET password_encryption = 'md5'");
  await admin.query("CREATE ROLE u_md5 LOGIN PASSWORD 'md5-pw'");
  pgSecret = (await admin.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'postgres'")).rows[0]!.p;
});
after(stopAllTestServers);

test('our secret derivation reproduces the SCRAM secrets Postgres stores, ASCII and non-ASCII', async () => {
  assert.match(pgSecret, /^SCRAM-SHA-256\$4096:/);
  const s = parseScramSecret(pgSecret);
  assert.equal(makeScramSecret('real-pw', { salt: s.salt, iterations: s.iterations }), pgSecret);
  const other = (await admin.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'u_scram'")).rows[0]!.p;
  const o = parseScramSecret(other);
  assert.equal(makeScramSecret('naïve pässword', { salt: o.salt, iterations: o.iterations }), other);
  assert.ok(verifyScramPassword('naïve pässword', other));
  assert.ok(!verifyScramPassword('naive password', other));
});

test('the server session accepts our client against the secret read from pg_authid, and refuses a wrong password', () => {
  const run = (password: string) => {
    const server = new ScramServerSession(pgSecret);
    const client = new ScramClientSession(password);
    const r = server.finish(client.clientFinal(server.start(client.clientFirst())));
    if (r.ok) client.verifyServerFinal(r.serverFinal!);
    return r.ok;
  };
  assert.equal(run('real-pw'), true);
  assert.equal(run('real-pw '), false);
});

test('a pg client logs in to the tiny server holding the secret copied from Postgres', async () => {
  const tiny = await startTinyServer({ method: 'scram', secret: pgSecret });
  try {
    const c = new pg.Client({ host: '127.0.0.1', port: tiny.port, user: 'postgres', password: 'real-pw', database: 'postgres' });
    await c.connect();
    assert.deepEqual((await c.query('ping')).rows, [{ answer: 'ping' }]);
    await c.end();
    const bad = new pg.Client({ host: '127.0.0.1', port: tiny.port, user: 'postgres', password: 'nope', database: 'postgres' });
    bad.on('error', () => {});
    await assert.rejects(bad.connect(), { code: '28P01' });
  } finally {
    await tiny.close();
  }
});

test('our md5 hash is what Postgres stores with password_encryption = md5', async () => {
  const stored = (await admin.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'u_md5'")).rows[0]!.p;
  assert.equal(stored, md5PasswordHash('md5-pw', 'u_md5'));
});
