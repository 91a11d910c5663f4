// Pipelining (proxy/pool/pipeline.ts, on unless pool.pipelining: false): fast autocommit keyed reads of many clients share server
// connections, answered in order. Every client gets its own rows and its own session settings;
// an error answers only the statement that caused it; slow shapes, transactions and session
// pooling keep a server of their own; a lane whose server dies fails only its queued statements.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { cancelQuery } from '../helpers/cancel.js';
import { loginAndRun } from '../helpers/raw-client.js';

let cluster: TestCluster;
let admin: pg.Client;

before(async () => {
  cluster = await startTestCluster({ shards: 2, poolSize: 12 });
  const app = await cluster.client();
  await app.query('CREATE TABLE kv (id bigint PRIMARY KEY, v text NOT NULL)');
  admin = await cluster.admin();
  await admin.query('SHARD TABLE kv BY (id)');
  await app.query("INSERT INTO kv (id, v) SELECT g, 'v' || g FROM generate_series(1, 400) g");
});
after(async () => {
  await cluster?.stop();
});

const pipelined = async () => Number((await admin.query('SHOW STATS')).rows.find((r) => r.name === 'pipelined_statements')!.value);

test('16 clients reading by key in simple queries share servers: every answer is the client\'s own, settings included', async () => {
  const clients = await Promise.all(Array.from({ length: 16 }, () => cluster.client()));
  // Two groups of clients in two time zones: a shared server must never mix them up.
  await Promise.all(clients.map((c, i) => c.query(`SET TimeZone = '${i % 2 ? 'Asia/Tokyo' : 'UTC'}'`)));
  const before = await pipelined();
  await Promise.all(clients.map(async (c, ci) => {
    for (let r = 0; r < 60; r++) {
      const id = ((ci * 61 + r * 7) % 400) + 1;
      const res = await c.query(`SELECT id, v, current_setting('TimeZone') AS tz FROM kv WHERE id = ${id}`);
      assert.equal(res.rows.length, 1);
      assert.equal(Number(res.rows[0].id), id);
      assert.equal(res.rows[0].v, `v${id}`);
      assert.equal(res.rows[0].tz, ci % 2 ? 'Asia/Tokyo' : 'UTC', `client ${ci} sees its own TimeZone`);
    }
  }));
  const sent = (await pipelined()) - before;
  // How many depends on the machine: a shape is pipelined only while it runs under 5 ms, and on a
  // loaded CI box many do not. Some must have, or the checks above proved nothing about lanes.
  assert.ok(sent > 0, `reads went through pipeline lanes (${sent} of ${16 * 60})`);
  const pools = await admin.query('SHOW POOLS');
  for (const p of pools.rows) assert.ok(Number(p.open) <= 12, `shard ${p.shard}: at most 12 server connections (${p.open})`);
  const servers = await admin.query('SHOW SERVERS');
  for (const s of servers.rows) assert.equal(s.tx, 'I', 'no server left in a transaction');
  await Promise.all(clients.map((c) => c.end()));
});

test('extended protocol: unnamed Parse/Bind/Execute and Bind/Execute of named statements are pipelined, every answer the client\'s own', async () => {
  const clients = await Promise.all(Array.from({ length: 12 }, () => cluster.client()));
  const before = await pipelined();
  await Promise.all(clients.map(async (c, ci) => {
    for (let r = 0; r < 40; r++) {
      const id = ((ci * 37 + r * 11) % 400) + 1;
      // node-postgres: Parse (unnamed), Bind, Describe portal, Execute, Sync.
      const res = await c.query('SELECT id, v FROM kv WHERE id = $1', [id]);
      assert.equal(Number(res.rows[0].id), id);
      assert.equal(res.rows[0].v, `v${id}`);
    }
  }));
  const sent = (await pipelined()) - before;
  assert.ok(sent > 0, `extended reads went through lanes (${sent} of ${12 * 40})`);
  // Interleaved with simple queries of the same clients.
  await Promise.all(clients.map(async (c, ci) => {
    for (let r = 0; r < 20; r++) {
      const id = ((ci * 29 + r * 3) % 400) + 1;
      assert.equal((await c.query('SELECT v FROM kv WHERE id = $1', [id])).rows[0].v, `v${id}`);
      assert.equal((await c.query(`SELECT v FROM kv WHERE id = ${id + 0}`)).rows[0].v, `v${id}`);
    }
  }));
  // Named prepared statements: the first execution (Parse + Bind) links a server; later ones
  // (Bind only) share lanes, the statement parsed on each lane server that lacks it.
  const named = await pipelined();
  await Promise.all(clients.map(async (c, ci) => {
    for (let r = 0; r < 30; r++) {
      const id = ((ci * 13 + r) % 400) + 1;
      const res = await c.query({ name: 'by_id', text: 'SELECT v FROM kv WHERE id = $1 AND v <> $2', values: [id, 'x'] });
      assert.equal(res.rows[0].v, `v${id}`);
      if (r % 10 === 9) {
        // A second named statement of the same client, and one of another shape, in between.
        const other = await c.query({ name: 'other', text: 'SELECT id FROM kv WHERE id = $1', values: [id] });
        assert.equal(Number(other.rows[0].id), id);
      }
    }
  }));
  assert.ok((await pipelined()) > named, 'named statements were pipelined once prepared');
  const servers = await admin.query('SHOW SERVERS');
  for (const s of servers.rows) assert.equal(s.tx, 'I', 'no server left in a transaction');
  await Promise.all(clients.map((c) => c.end()));
});

test('an error in a pipelined read answers only that statement; the clients behind it get their rows', async () => {
  const clients = await Promise.all(Array.from({ length: 12 }, () => cluster.client()));
  // The shape runs fast first (so it is pipelined), then some of its statements divide by zero.
  const q = (id: number, d: number) => `SELECT v, 10 / ${d} AS x FROM kv WHERE id = ${id}`;
  for (let i = 0; i < 5; i++) await clients[0]!.query(q(1, 1));
  const before = await pipelined();
  const outcomes = await Promise.all(clients.map(async (c, ci) => {
    const out: string[] = [];
    for (let r = 0; r < 30; r++) {
      const id = ((ci * 31 + r) % 400) + 1;
      const bad = (ci + r) % 7 === 0;
      try {
        const res = await c.query(q(id, bad ? 0 : 2));
        assert.equal(res.rows[0].v, `v${id}`);
        assert.equal(Number(res.rows[0].x), 5);
        out.push(bad ? 'unexpected success' : 'ok');
      } catch (err) {
        out.push(bad && (err as { code?: string }).code === '22012' ? 'ok' : `wrong error ${(err as Error).message}`);
      }
    }
    return out;
  }));
  assert.deepEqual(outcomes.flat().filter((o) => o !== 'ok'), [], 'each statement got its own answer');
  assert.ok((await pipelined()) > before, 'the reads were pipelined');
  await Promise.all(clients.map((c) => c.end()));
});

test('slow shapes, transactions and writes keep a server of their own', async () => {
  const c = await cluster.client();
  const before = await pipelined();
  // A shape slower than 5 ms is never pipelined, however often it runs.
  for (let i = 0; i < 6; i++) await c.query('SELECT v, pg_sleep(0.008) FROM kv WHERE id = 3');
  // Inside a transaction, and writes: the usual linked server.
  await c.query('BEGIN');
  for (let i = 0; i < 5; i++) await c.query('SELECT v FROM kv WHERE id = 4');
  await c.query('COMMIT');
  for (let i = 0; i < 5; i++) await c.query("UPDATE kv SET v = 'v5' WHERE id = 5");
  assert.equal(await pipelined(), before, 'nothing was pipelined');
  await c.end();
});

test('a lane whose server is terminated fails its queued reads with 08006; the clients go on', async () => {
  const clients = await Promise.all(Array.from({ length: 10 }, () => cluster.client()));
  let stop = false;
  const errors = new Map<string, number>();
  let oks = 0;
  const readers = clients.map(async (c, ci) => {
    for (let r = 0; !stop; r++) {
      const id = ((ci * 17 + r) % 400) + 1;
      try {
        const res = await c.query(`SELECT v FROM kv WHERE id = ${id}`);
        assert.equal(res.rows[0].v, `v${id}`);
        oks++;
      } catch (err) {
        const code = (err as { code?: string }).code ?? (err as Error).message;
        errors.set(code, (errors.get(code) ?? 0) + 1);
        // A failed client must not spin on rejections that never leave the microtask queue.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  // Terminate every proxy connection on shard 0 (lanes and linked servers alike).
  const s0 = await cluster.shard(0);
  await s0.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
  await new Promise((r) => setTimeout(r, 500));
  const okBefore = oks;
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(readers);
  // 08006 only: a server's FATAL must not reach a client as its own connection's death.
  for (const code of errors.keys()) assert.equal(code, '08006', `only lost-server errors, every client still connected (${[...errors].join(', ')})`);
  // The proxy goes on serving: a new client reads through fresh lanes.
  const fresh = await cluster.client();
  for (let i = 1; i <= 10; i++) assert.equal((await fresh.query(`SELECT v FROM kv WHERE id = ${i}`)).rows[0].v, `v${i}`);
  await fresh.end();
  assert.ok(oks > okBefore, `reads succeed again after the servers were terminated (${okBefore} → ${oks})`);
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
});

test('cancel: a pipelined read stuck behind a lock is answered 57014 and stopped on its server; the others get their rows', async () => {
  const s0 = await cluster.shard(0);
  const ids = (await s0.query('SELECT id FROM kv ORDER BY id LIMIT 4')).rows.map((r) => Number(r.id));
  const clients = await Promise.all(Array.from({ length: 4 }, () => cluster.client()));
  // The shape is fast (pipelined) until a DDL lock makes every read of kv wait.
  for (let i = 0; i < 5; i++) await clients[0]!.query(`SELECT v FROM kv WHERE id = ${ids[0]}`);
  const locker = await cluster.shard(0);
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE kv IN ACCESS EXCLUSIVE MODE');
  const before = await pipelined();
  const reads = clients.map((c, i) => c.query(`SELECT v FROM kv WHERE id = ${ids[i]}`).then((r) => r.rows[0].v as string, (e: { code?: string }) => `error ${e.code}`));
  // On a shared server the statements run one after another: the head waits for the lock, the
  // rest wait behind it in the server's input.
  const waiting = async (id: number) => Number((await s0.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = $1", [`SELECT v FROM kv WHERE id = ${id}`])).rows[0].n);
  for (let t = 0; t < 100 && (await waiting(ids[0]!)) < 1; t++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await waiting(ids[0]!), 1, 'the first read waits for the lock on shard 0');
  assert.equal((await pipelined()) - before, 4, 'all four went through lanes');
  // Stuck, not merely slow (the server is signalled only for a statement past stuckMs).
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  await cancelQuery(clients[0]!, cluster.proxy.port);
  assert.equal(await reads[0], 'error 57014', 'the cancelled read is answered 57014');
  assert.ok(Date.now() - started < 5000, 'at once, not when the lock goes');
  // The stuck statement was stopped on the server (the signal reached it), not merely forgotten.
  for (let t = 0; t < 100 && (await waiting(ids[0]!)) > 0; t++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await waiting(ids[0]!), 0, 'its statement no longer waits on the server');
  await locker.query('COMMIT');
  assert.deepEqual(await Promise.all(reads.slice(1)), ids.slice(1).map((id) => `v${id}`), 'the reads not cancelled get their own rows');
  assert.equal((await clients[0]!.query(`SELECT v FROM kv WHERE id = ${ids[0]}`)).rows[0].v, `v${ids[0]}`, 'the cancelled client goes on');
  const servers = await admin.query('SHOW SERVERS');
  for (const s of servers.rows) assert.equal(s.tx, 'I', 'no server left in a transaction');
  await locker.end();
  await Promise.all(clients.map((c) => c.end()));
});

test('a DDL lock on one table never holds up pipelined reads of another', async () => {
  const app = await cluster.client();
  await app.query('CREATE TABLE kv_other (id bigint PRIMARY KEY, v text NOT NULL)');
  await admin.query('SHARD TABLE kv_other BY (id)');
  await app.query("INSERT INTO kv_other (id, v) SELECT g, 'o' || g FROM generate_series(1, 400) g");
  const s0 = await cluster.shard(0);
  const ids = (await s0.query('SELECT id FROM kv ORDER BY id LIMIT 6')).rows.map((r) => Number(r.id));
  const clients = await Promise.all(Array.from({ length: 12 }, () => cluster.client()));
  for (let i = 0; i < 5; i++) {
    await clients[0]!.query(`SELECT v FROM kv WHERE id = ${ids[0]}`);
    await clients[0]!.query(`SELECT v FROM kv_other WHERE id = ${ids[0]}`);
  }
  const locker = await cluster.shard(0);
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE kv IN ACCESS EXCLUSIVE MODE');
  const before = await pipelined();
  // Interleaved in one burst: were lanes shared across tables, kv_other reads would queue behind kv's.
  const kvReads: Promise<string>[] = [];
  const otherReads: Promise<string>[] = [];
  clients.forEach((c, i) => {
    const id = ids[Math.floor(i / 2)]!;
    if (i % 2 === 0) kvReads.push(c.query(`SELECT v FROM kv WHERE id = ${id}`).then((r) => r.rows[0].v as string));
    else otherReads.push(c.query(`SELECT v FROM kv_other WHERE id = ${id}`).then((r) => r.rows[0].v as string));
  });
  const others = await Promise.race([Promise.all(otherReads), new Promise<'stalled'>((r) => setTimeout(() => r('stalled'), 3000))]);
  assert.deepEqual(others, ids.map((id) => `o${id}`), 'kv_other is read while kv is locked');
  assert.ok((await pipelined()) - before >= 2, 'reads went through lanes');
  await locker.query('COMMIT');
  assert.deepEqual(await Promise.all(kvReads), ids.map((id) => `v${id}`));
  await locker.end();
  await Promise.all(clients.map((c) => c.end()));
  await app.end();
});

test('a slow client reading a large pipelined reply: the proxy stops reading that lane\'s server instead of buffering the reply', async () => {
  const app = await cluster.client();
  await app.query('CREATE TABLE big (tenant bigint NOT NULL, seq int NOT NULL, payload text NOT NULL)');
  await admin.query('SHARD TABLE big BY (tenant)');
  await app.query("INSERT INTO big (tenant, seq, payload) VALUES (1, 1, 'small')");
  // 40 MB for tenant 2: more than every socket buffer between the server and the client.
  await app.query("INSERT INTO big (tenant, seq, payload) SELECT 2, g, repeat('x', 1000) FROM generate_series(1, 40000) g");
  // Fast while tenant 1 is read: the shape is pipelined.
  for (let i = 0; i < 5; i++) assert.equal((await app.query('SELECT payload FROM big WHERE tenant = 1')).rows[0].payload, 'small');
  const shards = [0, 1];
  const before = await pipelined();
  const sock = net.connect(cluster.proxy.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  await loginAndRun(sock, [serialize.query('SELECT 1')], 'Z');
  try {
    sock.pause(); // a client that reads nothing for now
    sock.write(serialize.query('SELECT payload FROM big WHERE tenant = 2'));
    const blocked = async () => {
      let n = 0;
      for (const i of shards) {
        const s = await cluster.shard(i);
        n += Number((await s.query("SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT payload FROM big WHERE tenant = 2' AND state = 'active' AND wait_event = 'ClientWrite'")).rows[0].n);
        await s.end();
      }
      return n;
    };
    let waiting = 0;
    for (let t = 0; t < 50 && waiting === 0; t++) {
      await new Promise((r) => setTimeout(r, 100));
      waiting = await blocked();
    }
    assert.equal((await pipelined()) - before, 1, 'the large read went through a lane');
    assert.equal(waiting, 1, 'its server backend waits to write (the proxy stopped reading it)');
    // Other clients' reads are served meanwhile.
    assert.equal((await app.query('SELECT payload FROM big WHERE tenant = 1')).rows[0].payload, 'small');
    // The client reads: every byte arrives, the reply ends with ReadyForQuery.
    let bytes = 0;
    let tail = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => {
        bytes += d.length;
        tail = Buffer.concat([tail, d]).subarray(-6);
        if (tail[0] === 0x5a && tail.readInt32BE(1) === 5) resolve();
      });
      sock.resume();
    });
    assert.ok(bytes > 40000 * 1000, `the whole reply arrived (${bytes} bytes)`);
    assert.equal(await blocked(), 0);
  } finally {
    sock.destroy();
  }
  await app.end();
});

test('session pooling never pipelines', async () => {
  const session = await startTestCluster({ shards: 1, poolMode: 'session' });
  try {
    const app = await session.client();
    await app.query('CREATE TABLE kv2 (id bigint PRIMARY KEY, v text)');
    await (await session.admin()).query('SHARD TABLE kv2 BY (id)');
    await app.query("INSERT INTO kv2 (id, v) VALUES (1, 'a')");
    const clients = await Promise.all(Array.from({ length: 3 }, () => session.client()));
    await Promise.all(clients.map(async (c) => { for (let i = 0; i < 20; i++) assert.equal((await c.query('SELECT v FROM kv2 WHERE id = 1')).rows[0].v, 'a'); }));
    const stats = (await (await session.admin()).query('SHOW STATS')).rows;
    assert.equal(Number(stats.find((r) => r.name === 'pipelined_statements')!.value), 0);
  } finally {
    await session.stop();
  }
});
