// Checks that the embedded server helper starts a real Postgres 15 and stops it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, stopAllTestServers } from '../helpers/postgres.js';

after(stopAllTestServers);

test('embedded server starts, answers SQL with scram auth, and stops', async () => {
  const server = await startTestServer();
  const c = await server.client();
  const { rows } = await c.query('SELECT current_setting($1) AS v, current_setting($2) AS m', ['server_version_num', 'password_encryption']);
  assert.match(rows[0].v, /^15\d{4}$/);
  assert.equal(rows[0].m, 'scram-sha-256');
  await server.stop();
});
