// Shard-level admin operations through the proxy on real servers: ADD SHARD, SHARD TABLE of a table
// that holds rows, ALTER SHARD max_bytes (53100), VERIFY PARTITION, DRAIN SHARD and REMOVE SHARD.
// One cluster (catalog + 2 shards + 1 spare server) is shared by the tests, which build on each other.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';
import { Mover, type MoverSettings } from '../../mover/index.js';
import { APP_PASSWORD, APP_USER, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestServer, type TestServer } from '../helpers/postgres.js';

// Correctness, not speed: the throttle is loose and the grace period short (a shared, loaded machine).
const SETTINGS: Partial<MoverSettings> = {
  chunkRows: 300, graceMs: 300, cutoverBudgetMs: 1500, retryDelayMs: 100, lockTimeoutMs: 2000, drainBatch: 500, lagBound: 50,
  verifyChunkRows: 200, latencyFloorMs: 50, maxDelayMs: 100,
};
const HASH_END = 2n ** 63n;
const ACTIVE_STATES = ['preparing', 'copying', 'catching_up', 'cutover', 'cleanup'];

type PgError = Error & { code?: string };

async function refused(p: Promise<unknown>, code: string, message?: RegExp): Promise<PgError> {
  try {
    await p;
  } catch (err) {
    const e = err as PgError;
    assert.equal(e.code, code, `expected SQLSTATE ${code}, got ${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected SQLSTATE ${code}, but the command succeeded`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function inRange(lo: string, hi: string, key = 'id'): string {
  const h = `hashint8extended(${key}, 0)`;
  return BigInt(hi) >= HASH_END ? `${h} >= '${lo}'::int8` : `${h} >= '${lo}'::int8 AND ${h} < '${hi}'::int8`;
}

describe('shard admin', () => {
  let cluster: TestCluster;
  /** A second proxy of the same cluster (not the leader): it must follow every shard change too. */
  let proxy2: RunningProxy;
  const clients2: pg.Client[] = [];
  let spare: TestServer;
  let app: pg.Client;
  let admin: pg.Client;
  let catalog: pg.Client;
  let shardClients: pg.Client[];
  let leaderJobs = true;
  const notices: string[] = [];
  /** What every acknowledged write says accounts (id → balance) and legacy (id → amount) hold. */
  const accounts = new Map<number, number>();
  const legacy = new Map<number, number>();
  let nextAccount = 10_000;
  const extraMovers: Mover[] = [];

  before(async () => {
    cluster = await startTestCluster({ shards: 2, runJobs: true, moverSettings: SETTINGS });
    // The leader's own loop runs the jobs; one test turns it off to drive a job with a kill point.
    const leaderPass = cluster.proxy.mover.runPending.bind(cluster.proxy.mover);
    cluster.proxy.mover.runPending = async () => (leaderJobs ? leaderPass() : []);
    proxy2 = await runProxy({ ...cluster.config, listen: { host: '127.0.0.1', port: await freePort() }, http: { host: '127.0.0.1', port: 0 } },
      pino({ level: process.env.PGTIDE_TEST_LOG ?? 'silent' }), { runJobs: false, moverSettings: SETTINGS });
    spare = await startTestServer({ settings: { max_prepared_transactions: 16 } });
    const sc = await spare.client();
    for (const db of ['app', 'bad', 'dirty']) await sc.query(`CREATE DATABASE ${db}`);
    await (await spare.client('bad')).query('CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, note text)');
    const dirty = await spare.client('dirty');
    await dirty.query('CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, visits int NOT NULL DEFAULT 0)');
    await dirty.query("INSERT INTO countries VALUES ('XX', 'Nowhere', 0)");

    app = await cluster.client();
    admin = await cluster.admin();
    admin.on('notice', (n) => notices.push(n.message ?? ''));
    catalog = await cluster.catalog.client();
    shardClients = [await cluster.shard(0), await cluster.shard(1), await spare.client('app')];
    await app.query('CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, note text)');
    await app.query('CREATE TABLE events (id bigserial PRIMARY KEY, account_id bigint NOT NULL, kind text NOT NULL)');
    await app.query('CREATE INDEX events_account ON events (account_id)');
    await app.query('CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, visits int NOT NULL DEFAULT 0)');
    await admin.query('SHARD TABLE accounts BY (id) PARTITIONS 6');
    await admin.query('SHARD TABLE events BY (account_id) COLOCATE WITH accounts');
    await admin.query('REFERENCE TABLE countries');
    await app.query("INSERT INTO countries VALUES ('NL', 'Netherlands', 0), ('FR', 'France', 0), ('JP', 'Japan', 0)");
    for (let from = 1; from <= 600; from += 100) {
      const values: string[] = [];
      for (let id = from; id < from + 100; id++) {
        values.push(`(${id}, ${id % 50})`);
        accounts.set(id, id % 50);
      }
      await app.query(`INSERT INTO accounts (id, balance) VALUES ${values.join(', ')}`);
    }
    for (let id = 1; id <= 100; id++) await app.query("INSERT INTO events (account_id, kind) VALUES ($1, 'open')", [id]);
  });

  after(async () => {
    for (const m of extraMovers) await m.close().catch(() => {});
    for (const c of clients2) await c.end().catch(() => {});
    await proxy2?.stop().catch(() => {});
    await cluster?.stop();
    await spare?.stop();
  });

  async function viaProxy2(database = 'app'): Promise<pg.Client> {
    const c = new pg.Client({ host: '127.0.0.1', port: proxy2.port, user: APP_USER, password: APP_PASSWORD, database });
    c.on('error', () => {});
    await c.connect();
    clients2.push(c);
    return c;
  }

  async function partitionsOf(table: string): Promise<{ id: number; lo: string; hi: string; shard: number }[]> {
    const { rows } = await catalog.query(
      `SELECT p.id, p.lo::text AS lo, p.hi::text AS hi, p.shard_id AS shard FROM pgtide.partitions p
         JOIN pgtide.tables t ON t.keyspace_id = p.keyspace_id WHERE t.name = $1 ORDER BY p.lo`, [table]);
    return rows as { id: number; lo: string; hi: string; shard: number }[];
  }

  async function shardStates(): Promise<Map<string, { state: string; partitions: string; max_bytes: string | null }>> {
    const r = await admin.query('SHOW SHARDS');
    return new Map(r.rows.map((s) => [s.id as string, s]));
  }

  /** Every row of `table` exactly once, on the shard that owns its key; the values are what the ledger says. */
  async function assertPlacement(table: string, valueCol: string, expected: Map<number, number>): Promise<void> {
    const parts = await partitionsOf(table);
    const seen = new Map<number, number>();
    for (const [i, c] of shardClients.entries()) {
      const { rows } = await c.query(`SELECT id::text AS k, ${valueCol}::text AS v, hashint8extended(id, 0)::text AS h FROM ${table}`);
      for (const r of rows as { k: string; v: string; h: string }[]) {
        const h = BigInt(r.h);
        const owner = parts.find((p) => BigInt(p.lo) <= h && h < BigInt(p.hi))!.shard;
        assert.equal(owner, i, `${table} row ${r.k} is on shard ${i} but its partition is owned by shard ${owner}`);
        assert.ok(!seen.has(Number(r.k)), `${table} row ${r.k} exists twice`);
        seen.set(Number(r.k), Number(r.v));
      }
    }
    assert.equal(seen.size, expected.size, `${table}: ${seen.size} rows on the shards, ${expected.size} acknowledged`);
    let sumSeen = 0;
    let sumExpected = 0;
    for (const [k, v] of expected) {
      assert.equal(seen.get(k), v, `${table} row ${k}`);
      sumExpected += v;
      sumSeen += seen.get(k)!;
    }
    assert.equal(sumSeen, sumExpected);
  }

  /** Wait until the jobs are done (or every job, when none is named); fail on a job that stopped. Samples how many ran at once. */
  async function waitJobs(ids?: number[], timeoutMs = 200_000): Promise<{ maxRunning: number }> {
    const deadline = Date.now() + timeoutMs;
    let maxRunning = 0;
    for (;;) {
      const { rows } = await admin.query('SHOW JOBS');
      const mine = rows.filter((j) => !ids || ids.includes(Number(j.id)));
      maxRunning = Math.max(maxRunning, rows.filter((j) => ACTIVE_STATES.includes(j.state)).length);
      const stuck = mine.find((j) => ['failed', 'paused', 'rolled_back'].includes(j.state));
      if (stuck) assert.fail(`job ${stuck.id} stopped in ${stuck.state}: ${stuck.reason}`);
      if (ids) assert.equal(mine.length, ids.length, 'SHOW JOBS lists every job');
      if (mine.every((j) => j.state === 'done')) return { maxRunning };
      if (Date.now() > deadline) assert.fail(`jobs still running after ${timeoutMs} ms: ${JSON.stringify(mine.filter((j) => j.state !== 'done'))}`);
      await sleep(200);
    }
  }

  /** Keyed writes to accounts through the proxy (increments and inserts), recorded in the ledger once acknowledged. */
  function startWriters(n: number) {
    let stop = false;
    let ops = 0;
    const errors: string[] = [];
    const loops = Array.from({ length: n }, async (_, w) => {
      const c = w % 2 === 0 ? await cluster.client() : await viaProxy2();
      let x = 7919 * (w + 1);
      while (!stop) {
        x = (x * 1103515245 + 12345) % 2147483648;
        try {
          if (x % 10 < 7) {
            const id = 1 + (x % 600);
            const r = await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [id]);
            if (r.rowCount !== 1) errors.push(`update of ${id} touched ${r.rowCount} rows`);
            else accounts.set(id, accounts.get(id)! + 1);
          } else {
            const id = nextAccount++;
            await c.query('INSERT INTO accounts (id, balance) VALUES ($1, 7)', [id]);
            accounts.set(id, 7);
          }
          ops++;
        } catch (err) {
          errors.push(`${(err as PgError).code}: ${(err as Error).message}`);
        }
        await sleep(5);
      }
    });
    return {
      async stop() {
        stop = true;
        await Promise.all(loops);
        return { ops, errors };
      },
    };
  }

  test('ADD SHARD refuses bad input with a SQLSTATE and registers nothing', async () => {
    await refused(admin.query('ADD SHARD postgres://somewhere/app'), '42601', /string literal/);
    await refused(admin.query("ADD SHARD 'not a url'"), '22023');
    await refused(admin.query("ADD SHARD 'mysql://127.0.0.1/app'"), '22023', /postgres:\/\//);
    await refused(admin.query(`ADD SHARD '${cluster.shards[0]!.url('app')}'`), '42710', /already shard 0/);
    await refused(admin.query("ADD SHARD 'postgres://app:secret@127.0.0.1:1/app'"), '08006', /cannot use postgres:\/\/app:\*\*\*@/);
    await refused(admin.query('ADD SHARD'), '0A000', /embedded cluster/);
    await refused(admin.query(`ADD SHARD '${spare.url('bad')}'`), '42804', /accounts.*differs/);
    await refused(admin.query(`ADD SHARD '${spare.url('dirty')}'`), '55000', /countries.*already holds rows/);
    const shards = await shardStates();
    assert.deepEqual([...shards.keys()], ['0', '1']);
  });

  test('ADD SHARD, with reference writes going on: tables and sequences created, reference copies equal, every proxy routes to it', { timeout: 240_000 }, async () => {
    // A writer on the reference table (written on every shard) keeps running during ADD SHARD. Its
    // transactions commit on every shard together (two-phase commit): a write that committed on
    // some copies and not yet on others would make any copy of the table a guess (see new-shard.ts).
    let stop = false;
    let visits = 0;
    const writerErrors: string[] = [];
    const w = await cluster.client();
    await w.query('SET pgtide.two_phase_commit = on');
    const writer = (async () => {
      while (!stop) {
        try {
          await w.query('BEGIN');
          await w.query("UPDATE countries SET visits = visits + 1 WHERE code = 'NL'");
          await w.query('COMMIT');
          visits++;
        } catch (err) {
          writerErrors.push((err as Error).message);
          await w.query('ROLLBACK').catch(() => {});
        }
        await sleep(3);
      }
    })();
    await sleep(200);
    notices.length = 0;
    const r = await admin.query(`ADD SHARD '${spare.url('app')}'`);
    await sleep(200);
    stop = true;
    await writer;
    assert.deepEqual(writerErrors, []);
    assert.ok(visits > 10, `the writer ran during ADD SHARD (${visits} updates)`);
    assert.equal(r.rows.length, 1);
    assert.equal(r.rows[0].shard, '2');
    assert.equal(r.rows[0].state, 'active');
    assert.match(r.rows[0].url, /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/app$/);
    assert.ok(notices.some((n) => /created .*accounts.*events.* on shard 2|created .*accounts.* on shard 2/.test(n)), notices.join('\n'));
    assert.ok(notices.some((n) => /reference table countries: 3 rows/.test(n)), notices.join('\n'));
    const shards = await shardStates();
    assert.equal(shards.get('2')?.state, 'active');
    assert.equal(shards.get('2')?.partitions, '0');
    // The other proxy acknowledged the version before ADD SHARD returned: it lists and routes to the new shard.
    const other = (await (await viaProxy2('pgtide')).query('SHOW SHARDS')).rows.find((r) => r.id === '2');
    assert.equal(other?.state, 'active');
    const app2 = await viaProxy2();
    for (let i = 0; i < 6; i++) assert.equal((await app2.query("SELECT visits FROM countries WHERE code = 'NL'")).rows[0].visits, visits);

    // The reference table is the same on every shard, and holds every acknowledged increment.
    const copies = await Promise.all(shardClients.map(async (c) => JSON.stringify((await c.query('SELECT code, name, visits FROM countries ORDER BY code')).rows)));
    assert.equal(copies[2], copies[0], `acknowledged ${visits}; shards: ${copies.join(' | ')}`);
    assert.equal(copies[1], copies[0], `acknowledged ${visits}; shards: ${copies.join(' | ')}`);
    const nl = (await shardClients[2]!.query("SELECT visits FROM countries WHERE code = 'NL'")).rows[0].visits;
    assert.equal(nl, visits);
    // Reads of it rotate over the active shards, the new one included: always the same answer.
    for (let i = 0; i < 6; i++) assert.equal((await app.query("SELECT visits FROM countries WHERE code = 'NL'")).rows[0].visits, visits);

    // The sharded tables exist, empty, with the events sequence on shard 2's own residue above every value handed out.
    const s2 = shardClients[2]!;
    assert.equal((await s2.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n, 0);
    const seq = (await s2.query('SELECT last_value::text AS v, is_called FROM events_id_seq')).rows[0];
    assert.equal((await s2.query("SELECT increment_by::int AS inc FROM pg_sequences WHERE sequencename = 'events_id_seq'")).rows[0].inc, 64);
    assert.equal(seq.is_called, false);
    assert.equal(Number(seq.v) % 64, 3, `shard 2 hands out 3, 67, … (got ${seq.v})`);
    const maxId = Math.max(...await Promise.all(shardClients.slice(0, 2).map(async (c) => Number((await c.query('SELECT coalesce(max(id), 0) AS m FROM events')).rows[0].m))));
    assert.ok(Number(seq.v) > maxId);
    const pk = (await s2.query("SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'accounts' AND indexdef LIKE '%UNIQUE%'")).rows[0].n;
    assert.equal(pk, 1, 'the primary key was created');

    // Scatter reads include the new shard and still count every row once.
    assert.equal(Number((await app.query('SELECT count(*) AS n FROM accounts')).rows[0].n), accounts.size);
  });

  test('SHARD TABLE of a table with rows on shard 0 spreads it with move jobs: every row once, on its owner', { timeout: 240_000 }, async () => {
    await app.query('CREATE TABLE legacy (id bigint PRIMARY KEY, amount int NOT NULL)');
    // Not sharded yet: the rows land on the primary shard, 0.
    await app.query('INSERT INTO legacy SELECT g, g % 97 FROM generate_series(1, 3000) g');
    for (let g = 1; g <= 3000; g++) legacy.set(g, g % 97);
    assert.equal((await shardClients[0]!.query('SELECT count(*)::int AS n FROM legacy')).rows[0].n, 3000);
    assert.equal((await shardClients[1]!.query('SELECT count(*)::int AS n FROM legacy')).rows[0].n, 0);

    // The int key space exists (accounts): its partitions are spread, so the rows cannot join it in place.
    await refused(admin.query('SHARD TABLE legacy BY (id)'), '0A000', /key space/);
    // Rows on two shards have no single owner to start from.
    await shardClients[1]!.query('INSERT INTO legacy VALUES (999999, 1)');
    await refused(admin.query('SHARD TABLE legacy BY (id) ALONE'), '0A000', /shards 0, 1/);
    await shardClients[1]!.query('DELETE FROM legacy WHERE id = 999999');
    assert.equal((await admin.query('SHOW TABLES')).rows.filter((t) => t.name === 'legacy').length, 0, 'nothing was declared');

    notices.length = 0;
    const r = await admin.query('SHARD TABLE legacy BY (id) PARTITIONS 6 ALONE');
    // 6 partitions over 3 shards: the 4 that belong on shards 1 and 2 move.
    assert.equal(r.rows.length, 4, JSON.stringify(r.rows));
    assert.deepEqual(r.rows.map((x) => x.target_shard).sort(), ['1', '1', '2', '2']);
    assert.ok(notices.some((n) => /4 move jobs spread 6 partitions over shards 0, 1, 2/.test(n)), notices.join('\n'));
    const ids = r.rows.map((x) => Number(x.job));
    const listed = (await admin.query('SHOW JOBS')).rows.map((j) => Number(j.id));
    for (const id of ids) assert.ok(listed.includes(id), `SHOW JOBS lists job ${id}`);

    // Keyed writes go on while the partitions move.
    const errors: string[] = [];
    let stop = false;
    const writer = (async () => {
      let i = 0;
      while (!stop) {
        const id = 1 + ((i++ * 37) % 3000);
        try {
          await app.query('UPDATE legacy SET amount = amount + 1 WHERE id = $1', [id]);
          legacy.set(id, legacy.get(id)! + 1);
        } catch (err) {
          errors.push((err as Error).message);
        }
        await sleep(5);
      }
    })();
    const { maxRunning } = await waitJobs(ids);
    stop = true;
    await writer;
    assert.deepEqual(errors, []);
    assert.ok(maxRunning <= 1, `jobs ran one at a time (saw ${maxRunning})`);
    await assertPlacement('legacy', 'amount', legacy);
    const parts = await partitionsOf('legacy');
    assert.deepEqual(parts.map((p) => p.shard), [0, 0, 1, 1, 2, 2]);
    const total = (await app.query('SELECT count(*) AS n, sum(amount) AS s FROM legacy')).rows[0];
    assert.equal(Number(total.n), 3000);
    assert.equal(Number(total.s), [...legacy.values()].reduce((a, b) => a + b, 0));
  });

  test('ALTER SHARD max_bytes: a move that would take the target above it is refused with 53100 naming the numbers', { timeout: 240_000 }, async () => {
    await refused(admin.query('ALTER SHARD 1 SET max_bytes = lots'), '22023', /invalid size/);
    await refused(admin.query('ALTER SHARD 1 SET colour = 1'), '42704', /colour/);
    await refused(admin.query("ALTER SHARD 9 SET max_bytes = '1 GB'"), '42704', /shard 9/);
    await refused(admin.query('ALTER SHARD 1 max_bytes'), '42601');
    await refused(admin.query('ALTER SHARD one SET max_bytes = 1'), '22023');

    const part = (await partitionsOf('accounts')).find((p) => p.shard === 0)!;
    const used = Number((await shardClients[1]!.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
    const limit = used + 1024;
    await admin.query(`ALTER SHARD 1 SET max_bytes = ${limit}`);
    assert.equal((await shardStates()).get('1')?.max_bytes, String(limit));
    const jobsBefore = (await admin.query('SHOW JOBS')).rows.length;
    const e = await refused(admin.query(`MOVE PARTITION ${part.id} TO SHARD 1`), '53100');
    for (const piece of ['shard 1', `partition ${part.id}`, 'pg_database_size', 'max_bytes', String(limit)]) assert.ok(e.message.includes(piece), `"${piece}" in: ${e.message}`);
    assert.equal((await admin.query('SHOW JOBS')).rows.length, jobsBefore, 'no job was created');
    assert.equal((await partitionsOf('accounts')).find((p) => p.id === part.id)!.shard, 0);

    // DRAIN SHARD checks the room of every target before it changes anything.
    const used2 = Number((await shardClients[2]!.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
    await admin.query(`ALTER SHARD 2 SET max_bytes = '${used2 + 1024} bytes'`);
    await refused(admin.query('DRAIN SHARD 0'), '53100', /no active shard has room/);
    assert.equal((await shardStates()).get('0')?.state, 'active');
    assert.equal((await admin.query('SHOW JOBS')).rows.length, jobsBefore);

    // With room, the move starts (and reserves its size against the limit).
    await admin.query("ALTER SHARD 1 SET max_bytes = '10 GB'");
    await admin.query('ALTER SHARD 2 RESET max_bytes');
    assert.equal((await shardStates()).get('2')?.max_bytes, null);
    const job = Number((await admin.query(`MOVE PARTITION ${part.id} TO SHARD 1`)).rows[0].job);
    const reserved = (await catalog.query("SELECT (progress->>'sizeBytes')::float8 AS b FROM pgtide.jobs WHERE id = $1", [job])).rows[0].b;
    assert.ok(reserved > 1024, `the job reserved its estimated size (${reserved} bytes)`);
    await waitJobs([job]);
    await admin.query('ALTER SHARD 1 RESET max_bytes');
    assert.equal((await partitionsOf('accounts')).find((p) => p.id === part.id)!.shard, 1);
  });

  test('VERIFY PARTITION: owner checksums, stray rows reported and left in place; during a move, source vs target with repair shown in SHOW JOB', { timeout: 240_000 }, async () => {
    await refused(admin.query('VERIFY PARTITION'), '42601');
    await refused(admin.query('VERIFY PARTITION 1 2'), '42601');
    await refused(admin.query('VERIFY PARTITION abc'), '22023');
    await refused(admin.query('VERIFY PARTITION 99999'), '42704', /partition 99999 does not exist/);

    const part = (await partitionsOf('accounts')).find((p) => p.shard === 0)!;
    const where = inRange(part.lo, part.hi);
    const ownerRows = (await shardClients[0]!.query(`SELECT count(*)::int AS n FROM accounts WHERE ${where}`)).rows[0].n;
    assert.ok(ownerRows > 0);
    const v1 = await admin.query(`VERIFY PARTITION ${part.id}`);
    const owner = v1.rows.find((x) => x.table === 'accounts' && x.role === 'owner')!;
    assert.equal(owner.shard, '0');
    assert.equal(Number(owner.rows), ownerRows);
    assert.match(owner.checksum, /^[0-9a-f]{32}$/);
    assert.deepEqual(v1.rows.filter((x) => x.role === 'not owner').map((x) => `${x.table}@${x.shard}:${x.rows}`).sort(),
      ['accounts@1:0', 'accounts@2:0', 'events@1:0', 'events@2:0']);
    assert.equal((await admin.query(`VERIFY PARTITION ${part.id}`)).rows.find((x) => x.table === 'accounts' && x.role === 'owner')!.checksum, owner.checksum, 'same rows, same checksum');

    // A row of the range written straight to a shard that does not own it: reported, never deleted.
    const key = Number((await shardClients[0]!.query(`SELECT min(id) AS k FROM accounts WHERE ${where}`)).rows[0].k);
    await shardClients[1]!.query("INSERT INTO accounts (id, balance, note) VALUES ($1, 5, 'stray')", [key]);
    notices.length = 0;
    const v2 = await admin.query(`VERIFY PARTITION ${part.id}`);
    const stray = v2.rows.find((x) => x.table === 'accounts' && x.shard === '1')!;
    assert.equal(stray.rows, '1');
    assert.match(stray.result, /STRAY: 1 row of partition \d+'s range/);
    assert.ok(notices.some((n) => /1 stray row on shards that do not own it/.test(n)), notices.join('\n'));
    assert.equal((await shardClients[1]!.query("SELECT count(*)::int AS n FROM accounts WHERE note = 'stray'")).rows[0].n, 1, 'the stray row is still there');
    await shardClients[1]!.query("DELETE FROM accounts WHERE note = 'stray'");

    // A move of the partition, stopped in catching_up: the leader's loop is off, a runner of our own holds the job.
    leaderJobs = false;
    await waitJobs();
    let duringRun: pg.QueryResult | null = null;
    const duringNotices: string[] = [];
    const mover = new Mover({
      catalog: cluster.proxy.catalog, settings: SETTINGS,
      hooks: {
        async onStep(id, step) {
          if (step !== 'state:catching_up' || duringRun) return;
          const before = notices.length;
          duringRun = await admin.query(`VERIFY PARTITION ${part.id}`);
          duringNotices.push(...notices.slice(before));
          await mover.store.patch(id, { requested: 'pause' });
        },
      },
    });
    extraMovers.push(mover);
    const job = await mover.startMove(part.id, 2);
    const paused = await mover.runJob(job.id);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.pausedFrom, 'catching_up');
    assert.ok(duringRun, 'VERIFY ran while our runner held the job');
    assert.ok(duringNotices.some((n) => /compare only: the job is running/.test(n)), duringNotices.join('\n'));

    // Break the target's copy: one row changed, one row gone. VERIFY finds both and repairs them from the source.
    const keys = (await shardClients[0]!.query(`SELECT id FROM accounts WHERE ${where} ORDER BY id LIMIT 2`)).rows.map((x) => Number(x.id));
    await shardClients[2]!.query('UPDATE accounts SET balance = balance + 1000 WHERE id = $1', [keys[0]]);
    await shardClients[2]!.query('DELETE FROM accounts WHERE id = $1', [keys[1]]);
    const v3 = await admin.query(`VERIFY PARTITION ${part.id}`);
    const cmp = v3.rows.find((x) => x.table === 'accounts')!;
    assert.equal(cmp.role, `source → target 2 (job ${job.id})`);
    assert.match(cmp.result, /2 keys repaired from the source, 0 still differ/);
    const src = (await shardClients[0]!.query('SELECT id, balance FROM accounts WHERE id = ANY($1) ORDER BY id', [keys])).rows;
    const dst = (await shardClients[2]!.query('SELECT id, balance FROM accounts WHERE id = ANY($1) ORDER BY id', [keys])).rows;
    assert.deepEqual(dst, src);
    const detail = Object.fromEntries((await admin.query(`SHOW JOB ${job.id}`)).rows.map((x) => [x.field, x.value]));
    const onDemand = JSON.parse(detail.verify_on_demand);
    assert.equal(onDemand.repaired, true);
    assert.equal(onDemand.tables.find((t: { table: string }) => t.table === 'accounts').repairedKeys, 2);
    assert.equal(detail.verification, null, 'the job verifies again before its cutover');
    assert.ok(Object.entries(detail).some(([k, v]) => k.startsWith('event') && /VERIFY PARTITION .*2 keys repaired/.test(String(v))), 'an event row records it');

    // The leader finishes the job; the partition is clean on its new owner.
    await admin.query(`RESUME JOB ${job.id}`);
    leaderJobs = true;
    await waitJobs([job.id]);
    const v4 = await admin.query(`VERIFY PARTITION ${part.id}`);
    assert.equal(v4.rows.find((x) => x.table === 'accounts' && x.role === 'owner')!.shard, '2');
    assert.ok(v4.rows.filter((x) => x.role === 'not owner').every((x) => x.rows === '0'), JSON.stringify(v4.rows));
    await assertPlacement('accounts', 'balance', accounts);
  });

  test('DRAIN SHARD moves every partition away under writes, one job at a time, balanced; REMOVE SHARD once nothing is left', { timeout: 300_000 }, async () => {
    await refused(admin.query('DRAIN SHARD'), '42601');
    await refused(admin.query('DRAIN SHARD x'), '22023');
    await refused(admin.query('DRAIN SHARD 7'), '42704', /shard 7 does not exist/);
    await refused(admin.query('REMOVE SHARD'), '42601');
    await refused(admin.query('REMOVE SHARD 7'), '42704');

    const owned = (await catalog.query('SELECT count(*)::int AS n FROM pgtide.partitions WHERE shard_id = 0')).rows[0].n;
    assert.ok(owned >= 3);
    const writers = startWriters(2);
    await sleep(300);
    notices.length = 0;
    const r = await admin.query('DRAIN SHARD 0');
    assert.equal(r.rows.length, owned, 'one job per partition');
    assert.ok(r.rows.every((x) => x.target_shard === '1' || x.target_shard === '2'));
    assert.equal((await shardStates()).get('0')?.state, 'draining');
    // Nothing is placed on a draining shard, and it cannot go while it owns partitions.
    const onOne = (await partitionsOf('accounts')).find((p) => p.shard === 1)!;
    await refused(admin.query(`MOVE PARTITION ${onOne.id} TO SHARD 0`), '55000', /draining/);
    await refused(admin.query('REMOVE SHARD 0'), '55006', /still owns/);
    // Draining again plans nothing new: every partition is in a job.
    const again = await admin.query('DRAIN SHARD 0');
    assert.equal(again.rows.length, 0);

    const { maxRunning } = await waitJobs(r.rows.map((x) => Number(x.job)));
    const { ops, errors } = await writers.stop();
    assert.deepEqual(errors, [], 'no client saw an error');
    assert.ok(ops > 20, `writers ran during the drain (${ops} writes)`);
    assert.ok(maxRunning <= 1, `jobs ran one at a time (saw ${maxRunning})`);
    const shards = await shardStates();
    assert.equal(shards.get('0')?.partitions, '0');
    const c1 = Number(shards.get('1')!.partitions);
    const c2 = Number(shards.get('2')!.partitions);
    assert.ok(Math.abs(c1 - c2) <= 2, `partitions balanced: shard 1 owns ${c1}, shard 2 owns ${c2}`);
    await assertPlacement('accounts', 'balance', accounts);
    await assertPlacement('legacy', 'amount', legacy);
    assert.equal((await app.query('SELECT count(*)::int AS n FROM events')).rows[0].n, 100);

    // An unsharded table lives on the primary shard (still 0 while it drains): it must be emptied or moved first.
    await app.query('CREATE TABLE scratch (id int)');
    await app.query('INSERT INTO scratch VALUES (1)');
    assert.equal((await shardClients[0]!.query('SELECT count(*)::int AS n FROM scratch')).rows[0].n, 1);
    await refused(admin.query('REMOVE SHARD 0'), '55006', /scratch/);
    await app.query('DELETE FROM scratch');
    notices.length = 0;
    await admin.query('REMOVE SHARD 0');
    assert.ok(notices.some((n) => /shard 0 is removed/.test(n)), notices.join('\n'));
    assert.equal((await shardStates()).get('0')?.state, 'removed');
    await refused(admin.query('REMOVE SHARD 0'), '55000', /already removed/);
    await refused(admin.query('DRAIN SHARD 0'), '55000', /removed/);

    // The cluster serves on without it: keyed and scatter reads, reference reads, new writes.
    assert.equal(Number((await app.query('SELECT count(*) AS n FROM accounts')).rows[0].n), accounts.size);
    assert.equal((await app.query("SELECT name FROM countries WHERE code = 'JP'")).rows[0].name, 'Japan');
    await app.query('INSERT INTO accounts (id, balance) VALUES ($1, 1)', [nextAccount]);
    accounts.set(nextAccount++, 1);
    await assertPlacement('accounts', 'balance', accounts);
  });

  test('the last active shard cannot be drained', { timeout: 300_000 }, async () => {
    const r = await admin.query('DRAIN SHARD 1');
    assert.ok(r.rows.length > 0);
    assert.ok(r.rows.every((x) => x.target_shard === '2'));
    await refused(admin.query('DRAIN SHARD 2'), '55000', /last active shard/);
    await waitJobs(r.rows.map((x) => Number(x.job)));
    await admin.query('REMOVE SHARD 1');
    await refused(admin.query('DRAIN SHARD 2'), '55000', /last active shard/);
    await refused(admin.query('REMOVE SHARD 2'), '55006', /still owns/);
    await assertPlacement('accounts', 'balance', accounts);
    await assertPlacement('legacy', 'amount', legacy);
    const shards = await shardStates();
    assert.deepEqual([...shards.values()].map((s) => s.state), ['removed', 'removed', 'active']);
  });
});
