// A real node-postgres client logs in to a tiny server made of pgtide's ScramServerSession, md5 check and backend writer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { makeScramSecret } from '../../../proxy/auth/scram.js';
import { md5PasswordHash } from '../../../proxy/auth/md5.js';
import { startTinyServer, type TinyServer } from './tiny-server.js';

const servers: TinyServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function tiny(auth: Parameters<typeof startTinyServer>[0]): Promise<TinyServer> {
  const s = await startTinyServer(auth);
  servers.push(s);
  return s;
}

async function login(port: number, password: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', password, database: 'shop' });
  await c.connect();
  return c;
}

async function assertLoginFails(port: number, password: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', password, database: 'shop' });
  c.on('error', () => {});
  await assert.rejects(c.connect(), (e: { code?: string; message?: string }) => e.code === '28P01' && /password authentication failed for user "alice"/.test(e.message ?? ''));
}

test('pg logs in with SCRAM-SHA-256 and runs a query; a wrong password gets 28P01', async () => {
  const s = await tiny({ method: 'scram', secret: makeScramSecret('sesame') });
  const c = await login(s.port, 'sesame');
  const r = await c.query('hello tiny');
  assert.deepEqual(r.rows, [{ answer: 'hello tiny' }]);
  await c.end();
  assert.equal(s.logins[0]!['user'], 'alice');
  assert.equal(s.logins[0]!['database'], 'shop');
  await assertLoginFails(s.port, 'sesame!');
});

test('pg logs in with md5 against a stored md5 hash; a wrong password gets 28P01', async () => {
  const s = await tiny({ method: 'md5', stored: md5PasswordHash('sesame', 'alice') });
  const c = await login(s.port, 'sesame');
  assert.deepEqual((await c.query('x')).rows, [{ answer: 'x' }]);
  await c.end();
  await assertLoginFails(s.port, 'other');
});

test('pg logs in with md5 against a plaintext password too', async () => {
  const s = await tiny({ method: 'md5', stored: 'sesame' });
  const c = await login(s.port, 'sesame');
  await c.end();
  await assertLoginFails(s.port, 'Sesame');
});
