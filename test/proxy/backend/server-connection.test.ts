// ServerConnection against a real Postgres (SCRAM, md5, cleartext, trust; wrong password, unknown database, cancel) and against fakes (timeout, leftover bytes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/postgres.js';
import { freePort } from '../../../cli/embedded-server.js';
import { ServerConnection, sendCancel, type ServerConnectOptions } from '../../../proxy/backend/server-connection.js';
import { ServerError } from '../../../proxy/backend/errors.js';
import { PgtideError } from '../../../proxy/protocol/errors.js';
import { BackendCode, BackendScanner, commandCompleteTag, parseDataRow, parseErrorFields, readyForQueryStatus } from '../../../proxy/protocol/backend-scanner.js';
import { buildQuery } from '../../../proxy/protocol/frontend-writer.js';
import * as bw from '../../../proxy/protocol/backend-writer.js';
import { startTinyServer } from '../auth/tiny-server.js';
import { makeScramSecret } from '../../../proxy/auth/scram.js';

let server: TestServer;
const open: ServerConnection[] = [];

function opts(o: Partial<ServerConnectOptions> = {}): ServerConnectOptions {
  return { host: '127.0.0.1', port: server.port, user: 'postgres', password: server.password, database: 'postgres', connectTimeoutMs: 5000, ...o };
}

async function connect(o: Partial<ServerConnectOptions> = {}): Promise<ServerConnection> {
  const c = await ServerConnection.connect(opts(o));
  open.push(c);
  return c;
}

/** Runs one simple query on a handed-over connection; returns text values of the first column, the tag, and any error. */
function query(conn: ServerConnection, sql: string): Promise<{ values: (string | null)[]; tag: string | null; error: Record<string, string> | null; status: string }> {
  return new Promise((resolve, reject) => {
    const scanner = new BackendScanner();
    const values: (string | null)[] = [];
    let tag: string | null = null;
    let error: Record<string, string> | null = null;
    const onData = (chunk: Buffer): void => {
      scanner.push(chunk);
      for (let m = scanner.next(); m !== undefined; m = scanner.next()) {
        const b = scanner.buffer;
        if (m.code === BackendCode.DataRow) values.push(parseDataRow(b, m.start, m.end)[0]?.toString() ?? null);
        else if (m.code === BackendCode.CommandComplete) tag = commandCompleteTag(b, m.start, m.end);
        else if (m.code === BackendCode.ErrorResponse) error = parseErrorFields(b, m.start, m.end);
        else if (m.code === BackendCode.ReadyForQuery) {
          conn.socket.off('data', onData);
          resolve({ values, tag, error, status: readyForQueryStatus(b, m.start) });
        }
      }
    };
    conn.socket.on('data', onData);
    conn.socket.once('error', reject);
    conn.socket.write(buildQuery(sql));
  });
}

before(async () => {
  server = await startTestServer({ authMethod: 'scram-sha-256' });
  const admin = await server.client();
  await admin.query("CREATE ROLE u_scram LOGIN PASSWORD 'scram-pw'");
  await admin.query("SET password_encryption = 'md5'");
  await admin.query("CREATE ROLE u_md5 LOGIN PASSWORD 'md5-pw'");
  await admin.query("CREATE ROLE u_clear LOGIN PASSWORD 'clear-pw'");
  await admin.query('CREATE ROLE u_trust LOGIN');
  // one server, four methods: per-user lines ahead of the catch-all scram line
  const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
  const lines = ['host all u_md5 127.0.0.1/32 md5', 'host all u_clear 127.0.0.1/32 password', 'host all u_trust 127.0.0.1/32 trust'];
  writeFileSync(hba, lines.join('\n') + '\n' + readFileSync(hba, 'utf8'));
  await admin.query('SELECT pg_reload_conf()');
  // the postmaster reloads asynchronously: wait until the trust line answers
  for (let i = 0; ; i++) {
    try {
      (await connect({ user: 'u_trust', password: '' })).close();
      break;
    } catch (err) {
      if (i > 50) throw err;
      await sleep(100);
    }
  }
});

after(async () => {
  for (const c of open) c.socket.destroy();
  await stopAllTestServers();
});

test('SCRAM-SHA-256 login: key data, server parameters, our GUCs, and a usable socket', async () => {
  const c = await connect({ params: { application_name: 'pgtide-test' } });
  assert.equal(c.authMethod, 'scram-sha-256');
  assert.ok(c.pid > 0);
  assert.equal(c.secret.length, 4);
  assert.match(c.serverParams.get('server_version') ?? '', /^15\./);
  assert.equal(c.serverParams.get('client_encoding'), 'UTF8');
  assert.equal(c.serverParams.get('application_name'), 'pgtide-test');
  assert.equal(c.leftover, null);
  assert.equal(c.socket.listenerCount('data'), 0, 'connect() removed its own data listener');
  const r = await query(c, 'SELECT pg_backend_pid()::text');
  assert.deepEqual(r.values, [String(c.pid)]);
  assert.equal(r.tag, 'SELECT 1');
  assert.equal(r.status, 'I');
});

test('a non-superuser SCRAM role, md5, cleartext and trust each log in with their method', async () => {
  const cases = [
    { user: 'u_scram', password: 'scram-pw', method: 'scram-sha-256' },
    { user: 'u_md5', password: 'md5-pw', method: 'md5' },
    { user: 'u_clear', password: 'clear-pw', method: 'password' },
    { user: 'u_trust', password: '', method: 'trust' },
  ];
  for (const k of cases) {
    const c = await connect({ user: k.user, password: k.password });
    assert.equal(c.authMethod, k.method, k.user);
    assert.deepEqual((await query(c, 'SELECT current_user::text')).values, [k.user]);
  }
});

test('a wrong password is 28P01 carrying the server message, for every method', async () => {
  for (const user of ['postgres', 'u_md5', 'u_clear']) {
    await assert.rejects(connect({ user, password: 'wrong' }), (e: unknown) => {
      assert.ok(e instanceof ServerError);
      assert.ok(e instanceof PgtideError);
      assert.equal(e.sqlstate, '28P01');
      assert.equal(e.severity, 'FATAL');
      assert.match(e.message, new RegExp(`password authentication failed for user "${user}"`));
      return true;
    });
  }
});

test('an unknown database is 3D000', async () => {
  await assert.rejects(connect({ database: 'no_such_db' }), (e: unknown) => e instanceof ServerError && e.sqlstate === '3D000' && /no_such_db/.test(e.message));
});

test('bytes sent before the caller attaches its data listener are kept until it does', async () => {
  const c = await connect();
  // the answer arrives while nobody listens: the socket must hold it, not drop it
  c.socket.write(buildQuery("SELECT 'held'"));
  await sleep(150);
  const r = await new Promise<string[]>((resolve) => {
    const scanner = new BackendScanner();
    const seen: string[] = [];
    c.socket.on('data', (chunk: Buffer) => {
      scanner.push(chunk);
      for (const m of scanner) {
        if (m.code === BackendCode.DataRow) seen.push(parseDataRow(scanner.buffer, m.start, m.end)[0]!.toString());
        if (m.code === BackendCode.ReadyForQuery) resolve(seen);
      }
    });
  });
  assert.deepEqual(r, ['held']);
});

test('cancel() interrupts a running query with 57014; a wrong key cancels nothing', async () => {
  const c = await connect();
  const running = query(c, 'SELECT pg_sleep(5)');
  await sleep(200);
  await sendCancel('127.0.0.1', server.port, c.pid, Buffer.from(c.secret.map((x) => x ^ 0xff)));
  await sleep(200);
  const t0 = Date.now();
  await c.cancel();
  const r = await running;
  assert.equal(r.error?.['C'], '57014');
  assert.ok(Date.now() - t0 < 3000, 'the right key cancelled it promptly');
});

test('connection ids are unique and increasing', async () => {
  const a = await connect();
  const b = await connect();
  assert.ok(b.id > a.id);
});

test('a refused port fails with 08006', async () => {
  const port = await freePort();
  await assert.rejects(ServerConnection.connect(opts({ port })), (e: unknown) => e instanceof PgtideError && e.sqlstate === '08006' && e.code === 'SERVER_CONNECT_FAILED');
});

/** A throw-away TCP server; close() destroys its sockets, since an unread socket never sees the peer's FIN. */
async function fakeServer(onConnection: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

test('a server that never answers times out with 08006', async () => {
  const silent = await fakeServer(() => {});
  const t0 = Date.now();
  await assert.rejects(ServerConnection.connect(opts({ port: silent.port, connectTimeoutMs: 200 })), (e: unknown) => e instanceof PgtideError && e.sqlstate === '08006' && e.code === 'SERVER_CONNECT_TIMEOUT');
  assert.ok(Date.now() - t0 < 2000);
  await silent.close();
});

test('a server closing during login fails with 08006', async () => {
  const rude = await fakeServer((s) => s.end());
  await assert.rejects(ServerConnection.connect(opts({ port: rude.port })), (e: unknown) => e instanceof PgtideError && e.sqlstate === '08006' && e.code === 'SERVER_CLOSED');
  await rude.close();
});

test('a malformed server message during login is a protocol violation (08P01)', async () => {
  const garbage = await fakeServer((s) => s.once('data', () => s.write(Buffer.from([0x52, 0, 0, 0, 2]))));
  await assert.rejects(ServerConnection.connect(opts({ port: garbage.port })), (e: unknown) => e instanceof PgtideError && e.sqlstate === '08P01');
  await garbage.close();
});

test('bytes following ReadyForQuery in the same packet are handed over as leftover', async () => {
  const extra = bw.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'after ready' });
  const tiny = await startTinyServer({ method: 'scram', secret: makeScramSecret('pw') }, { afterReady: extra });
  try {
    const c = await ServerConnection.connect({ host: '127.0.0.1', port: tiny.port, user: 'alice', password: 'pw', database: 'd', connectTimeoutMs: 2000 });
    assert.deepEqual(c.leftover, extra);
    assert.equal(c.pid, 4242);
    assert.deepEqual(c.secret, Buffer.from([1, 2, 3, 4]));
    assert.equal(c.serverParams.get('server_version'), '15.0 (tiny)');
    c.socket.destroy();
    await assert.rejects(ServerConnection.connect({ host: '127.0.0.1', port: tiny.port, user: 'alice', password: 'bad', database: 'd' }), { sqlstate: '28P01' });
  } finally {
    await tiny.close();
  }
});

test('an unsupported authentication request (GSSAPI) is refused with 08004', async () => {
  const gss = await fakeServer((s) => s.once('data', () => s.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 7]))));
  await assert.rejects(ServerConnection.connect(opts({ port: gss.port })), (e: unknown) => e instanceof PgtideError && e.sqlstate === '08004');
  await gss.close();
});
