// Bad input and faults: each gets the error a driver expects, and every other client keeps working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { startTestCluster, APP_DB, APP_PASSWORD, APP_USER, type TestCluster } from '../helpers/cluster.js';
import { cancelQuery } from '../helpers/cancel.js';
import { loginAndRun } from '../helpers/raw-client.js';
import { buildStartup } from '../../proxy/protocol/frontend-writer.js';

let cluster: TestCluster;
let bystander: pg.Client;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 4 });
  bystander = await cluster.client();
  await bystander.query('CREATE TABLE items (id bigint PRIMARY KEY, v int)');
  await (await cluster.admin()).query('SHARD TABLE items BY (id)');
  for (let i = 1; i <= 20; i++) await bystander.query('INSERT INTO items (id, v) VALUES ($1, $2)', [i, i]);
});
after(async () => {
  await cluster?.stop();
});

/** The bystander still gets right answers from both shards. */
async function othersStillWork(): Promise<void> {
  const r = await bystander.query('SELECT v FROM items WHERE id = $1', [7]);
  assert.equal(r.rows[0].v, 7);
  const all = await bystander.query('SELECT id FROM items');
  assert.equal(all.rowCount, 20);
}

/** Open a raw socket, send bytes, collect what comes back until the server closes (or timeout). */
function raw(port: number, chunks: Buffer[], waitMs = 2000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ data: Buffer.concat(got), closed });
    }, waitMs);
    sock.on('data', (d) => got.push(d));
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(got), closed });
    });
    sock.on('error', () => {});
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
    });
  });
}

function errorFields(data: Buffer): Record<string, string> | null {
  // Find the first ErrorResponse and read its fields.
  let off = 0;
  while (off + 5 <= data.length) {
    const code = data[off]!;
    const len = data.readInt32BE(off + 1);
    if (code === 0x45) {
      const fields: Record<string, string> = {};
      let p = off + 5;
      while (p < off + 1 + len && data[p] !== 0) {
        const f = String.fromCharCode(data[p]!);
        const z = data.indexOf(0, p + 1);
        fields[f] = data.toString('utf8', p + 1, z);
        p = z + 1;
      }
      return fields;
    }
    off += 1 + len;
  }
  return null;
}

test('garbage bytes before startup: the connection is closed', async () => {
  const r = await raw(cluster.proxy.port, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
  assert.equal(r.closed, true);
  await othersStillWork();
});

test('a 2 GB length field is refused before buffering, with 08P01', async () => {
  const startup = buildStartup({ user: APP_USER, database: APP_DB });
  const huge = Buffer.alloc(5);
  huge[0] = 0x51; // Q
  huge.writeInt32BE(0x7fffffff, 1);
  // Unauthenticated: the startup packet itself claims 2 GB.
  const bogusStartup = Buffer.alloc(8);
  bogusStartup.writeInt32BE(0x7fffffff, 0);
  bogusStartup.writeInt32BE(196608, 4);
  const r = await raw(cluster.proxy.port, [bogusStartup]);
  assert.equal(r.closed, true);
  void startup;
  void huge;
  await othersStillWork();
});

test('after login, a 2 GB message and an unknown message type close that client only (08P01)', async () => {
  for (const bad of [Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]), Buffer.from([0x7a, 0, 0, 0, 4])]) {
    const c = await cluster.client();
    const conn = (c as unknown as { connection: { stream: net.Socket } }).connection;
    const errored = new Promise<Error & { code?: string }>((resolve) => c.once('error', resolve));
    conn.stream.write(bad);
    const err = await errored;
    assert.equal(err.code, '08P01');
  }
  await othersStillWork();
});

test('a truncated message and a vanished client leave no trace', async () => {
  const c = await cluster.client();
  const conn = (c as unknown as { connection: { stream: net.Socket } }).connection;
  // Half a Query message, then the client disappears.
  conn.stream.write(Buffer.from([0x51, 0, 0, 0, 50, 0x53, 0x45]));
  conn.stream.destroy();
  await new Promise((r) => setTimeout(r, 100));
  await othersStillWork();
});

test('a client that vanishes mid-transaction: its server is discarded and its writes rolled back', async () => {
  const c = await cluster.client();
  await c.query('BEGIN');
  await c.query('UPDATE items SET v = 999 WHERE id = 3');
  (c as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const r = await bystander.query('SELECT v FROM items WHERE id = 3');
  assert.equal(r.rows[0].v, 3, 'the uncommitted write is gone');
  const admin = await cluster.admin();
  const servers = await admin.query('SHOW SERVERS');
  for (const s of servers.rows) assert.equal(s.tx, 'I', 'no pooled server is left in a transaction');
  await othersStillWork();
});

test('unknown database (3D000), unknown user and wrong password (28P01)', async () => {
  const base = { host: '127.0.0.1', port: cluster.proxy.port };
  const cases: [pg.ClientConfig, string][] = [
    [{ ...base, user: APP_USER, password: APP_PASSWORD, database: 'nosuchdb' }, '3D000'],
    [{ ...base, user: 'nobody', password: 'x', database: APP_DB }, '28P01'],
    [{ ...base, user: APP_USER, password: 'wrong', database: APP_DB }, '28P01'],
    [{ ...base, user: 'md5user', password: 'wrong', database: APP_DB }, '28P01'],
    [{ ...base, user: 'md5user', password: 'md5-password', database: 'pgtide' }, '42501'],
  ];
  for (const [cfg, code] of cases) {
    const c = new pg.Client(cfg);
    c.on('error', () => {});
    await assert.rejects(c.connect(), (e: Error & { code?: string }) => {
      assert.equal(e.code, code, `${cfg.user}@${cfg.database}: ${e.message}`);
      return true;
    });
  }
  await othersStillWork();
});

test('md5 authentication works for a user whose secret is an md5 hash', async () => {
  const c = new pg.Client({ host: '127.0.0.1', port: cluster.proxy.port, user: 'md5user', password: 'md5-password', database: APP_DB });
  await c.connect();
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
  await c.end();
});

test('invalid SQL gets 42601 with a position; the session goes on', async () => {
  const c = await cluster.client();
  await assert.rejects(c.query('SELEC * FORM items'), (e: Error & { code?: string; position?: string }) => {
    assert.equal(e.code, '42601');
    assert.match(e.message, /syntax error/);
    return true;
  });
  await assert.rejects(c.query('SELECT * FROM no_such_table'), (e: Error & { code?: string }) => e.code === '42P01');
  assert.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2);
});

test('multi-statement strings run as one implicit transaction on one shard', async () => {
  const c = await cluster.client();
  const r = await c.query('UPDATE items SET v = v + 100 WHERE id = 5; SELECT v FROM items WHERE id = 5');
  const results = r as unknown as pg.QueryResult[];
  assert.equal(results.length, 2);
  assert.equal(results[1]!.rows[0].v, 105);
  // A failure in the second statement rolls back the first (one implicit transaction).
  await assert.rejects(c.query('UPDATE items SET v = 0 WHERE id = 5; SELECT 1/0'), (e: Error & { code?: string }) => e.code === '22012');
  assert.equal((await c.query('SELECT v FROM items WHERE id = 5')).rows[0].v, 105);
  // Statements for two shards in one string are refused before anything runs.
  const ids = [1, 2, 3, 4, 5, 6];
  const shardOf = async (id: number) => (await (await cluster.admin()).query(`EXPLAIN ROUTE SELECT * FROM items WHERE id = ${id}`)).rows[0].shards;
  const owners = await Promise.all(ids.map(shardOf));
  const a = ids[owners.indexOf('0')]!;
  const b = ids[owners.indexOf('1')]!;
  await assert.rejects(c.query(`UPDATE items SET v = -1 WHERE id = ${a}; UPDATE items SET v = -1 WHERE id = ${b}`), (e: Error & { code?: string }) => e.code === '0A000');
  assert.notEqual((await c.query('SELECT v FROM items WHERE id = $1', [a])).rows[0].v, -1);
});

test('SSLRequest is answered N, GSSENCRequest N, then a plain login proceeds', async () => {
  const ssl = Buffer.alloc(8);
  ssl.writeInt32BE(8, 0);
  ssl.writeInt32BE(80877103, 4);
  const r = await raw(cluster.proxy.port, [ssl], 300);
  assert.equal(r.data.toString(), 'N');
  const gss = Buffer.alloc(8);
  gss.writeInt32BE(8, 0);
  gss.writeInt32BE(80877104, 4);
  const g = await raw(cluster.proxy.port, [gss, buildStartup({ user: APP_USER, database: APP_DB })], 500);
  assert.equal(g.data[0], 'N'.charCodeAt(0));
  assert.equal(g.data[1], 'R'.charCodeAt(0), 'then the authentication request');
  // node-postgres with ssl required fails cleanly because the proxy has no certificate here.
  const c = new pg.Client({ connectionString: cluster.url, ssl: { rejectUnauthorized: false } });
  c.on('error', () => {});
  await assert.rejects(c.connect(), /does not support SSL/);
});

test('protocol 3.2 is negotiated down to 3.0 with NegotiateProtocolVersion', async () => {
  const startup = buildStartup({ user: APP_USER, database: APP_DB, '_pq_.test_option': 'x' });
  startup.writeInt32BE((3 << 16) | 2, 4);
  const r = await raw(cluster.proxy.port, [startup], 500);
  assert.equal(r.data[0], 'v'.charCodeAt(0));
  assert.equal(r.data.readInt32BE(5), 3 << 16, 'newest supported: 3.0');
  assert.ok(r.data.includes(Buffer.from('_pq_.test_option')));
});

test('a cancel request reaches the server running the query (57014)', async () => {
  const c = await cluster.client();
  const q = c.query('SELECT pg_sleep(30)');
  await new Promise((r) => setTimeout(r, 300));
  const start = Date.now();
  await cancelQuery(c, cluster.proxy.port);
  await assert.rejects(q, (e: Error & { code?: string }) => e.code === '57014');
  assert.ok(Date.now() - start < 10000);
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
});

test('COPY on an unsharded table works on its single shard, both ways', async () => {
  const c = await cluster.client();
  await c.query('CREATE TABLE notes (id int, body text)');
  const copyIn = serialize.query('COPY notes FROM STDIN');
  void copyIn;
  // node-postgres has no COPY streams without pg-copy-streams; drive the protocol by hand.
  const sock = net.connect(cluster.proxy.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const reply = await loginAndRun(sock, [
    serialize.query('COPY notes FROM STDIN'),
  ], 'G');
  assert.equal(reply[0], 'G'.charCodeAt(0));
  const done = await loginAndRun(sock, [
    serialize.copyData(Buffer.from('1\thello\n2\tworld\n')),
    serialize.copyDone(),
  ], 'Z', true);
  assert.ok(done.includes(Buffer.from('COPY 2')));
  sock.destroy();
  const r = await c.query('SELECT body FROM notes ORDER BY id');
  assert.deepEqual(r.rows.map((x) => x.body), ['hello', 'world']);
});

test('a shard that is down: clients of that shard get 08006, the other shard keeps serving', async (t) => {
  const c = await startTestCluster({ shards: 2, poolSize: 2 });
  t.after(() => c.stop());
  const app = await c.client();
  await app.query('CREATE TABLE kv (k bigint PRIMARY KEY, v text)');
  await (await c.admin()).query('SHARD TABLE kv BY (k)');
  for (let i = 1; i <= 20; i++) await app.query('INSERT INTO kv (k, v) VALUES ($1, $2)', [i, `v${i}`]);
  const routes = await Promise.all(Array.from({ length: 20 }, async (_, i) => (await (await c.admin()).query(`EXPLAIN ROUTE SELECT * FROM kv WHERE k = ${i + 1}`)).rows[0].shards));
  const onShard1 = routes.indexOf('1') + 1;
  const onShard0 = routes.indexOf('0') + 1;
  await c.shards[1]!.stop();
  const fresh = await c.client();
  await assert.rejects(fresh.query('SELECT v FROM kv WHERE k = $1', [onShard1]), (e: Error & { code?: string }) => {
    assert.match(e.code ?? '', /^(08006|57P01|08P01|08003)$/);
    return true;
  });
  // The same session and others keep working on shard 0.
  assert.equal((await fresh.query('SELECT v FROM kv WHERE k = $1', [onShard0])).rows[0].v, `v${onShard0}`);
  const other = await c.client();
  assert.equal((await other.query('SELECT v FROM kv WHERE k = $1', [onShard0])).rows[0].v, `v${onShard0}`);
  // A scatter read fails as a whole rather than returning partial rows.
  await assert.rejects(other.query('SELECT * FROM kv'));
});
