// Live moves while the leader proxy is SIGKILLed: two pgtide child processes, writers with a ledger
// through both, a move, a split-and-move and a move back (then a merge), the leader killed at seeded
// random points of those jobs (copying, catching_up, cutover holding traffic, cutover with the source
// fenced, cleanup) and restarted. The other proxy takes the lease and finishes each job.
//
// Writers connected to the killed proxy lose their connection: that write is unacknowledged, its
// outcome unknown. The checker settles it as a real one would: once the dead proxy's server
// transactions are gone, it reads the key back and requires either the state before or the state
// after the write (anything else is a violation), and the ledger follows what it read. Writers on a
// proxy that was not killed must see no error at all. Then: every acknowledged write present
// exactly once on its owner, nothing on a non-owner, counts and checksums equal to the ledger.
//
// Not covered here: transactions that span shards (two-phase commit in doubt after a kill) and a
// transaction that reads the moving range before writing it on a proxy that is not the leader
// (every live proxy holds and acks the range before the fence: see non-leader-hold.test.ts): every
// writer transaction here writes one key, first.
//
// PGTIDE_KILL_SEED=<n> replays one kill plan (the seed is printed on every run).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../cli/embedded-server.js';
import { Catalog } from '../../config/catalog.js';
import { hashKey } from '../../config/hash.js';
import { Mover, type JobSettings } from '../../mover/index.js';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/postgres.js';
import { killAllPgtideProcesses, startPgtideProcess } from '../helpers/pgtide-process.js';
import { checkInvariants, DDL, Ledger, preload, RoutingView } from '../mover/workload.js';

const SEED = Number(process.env.PGTIDE_KILL_SEED ?? Math.floor(Math.random() * 1_000_000));
/** Per-job settings (stored with the job, so whichever proxy runs it uses them). */
const JOB: JobSettings = { chunkRows: 150, cutoverBudgetMs: 3000 };
const PRELOAD = 3000; // keys 100000.. that the writers never touch (the copy has something to do)
const WRITER_KEYS = 400;
const WRITERS = 4;

type KillKind = 'copying' | 'catching_up' | 'cutover-hold' | 'cutover-fenced' | 'cleanup';
const ORDER: KillKind[] = ['copying', 'catching_up', 'cutover-hold', 'cutover-fenced', 'cleanup'];
const STATE_RANK: Record<string, number> = { planned: 0, preparing: 1, copying: 2, catching_up: 3, cutover: 4, cleanup: 5, done: 6 };

let x = SEED || 1;
function rnd(n: number): number {
  x = (x * 1103515245 + 12345) & 0x7fffffff;
  return x % n;
}

interface Proxy {
  name: string;
  cfg: string;
  port: number;
  proc: ChildProcess | null;
}
interface Kill { job: number; planned: KillKind; proxy: string; pid: number; state: string; delayMs: number; at: number }

let dir: string;
let catalogServer: TestServer;
let shardServers: TestServer[];
let catalog: Catalog;
let mover: Mover;
const proxies: Proxy[] = [];
const shards: pg.Client[] = [];
const openClients = new Set<pg.Client>();
/** Processes the test SIGKILLed (a connection to one of these may fail). */
const killedProcs = new Set<ChildProcess>();
const kills: Kill[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
/** `p`, or an error after `ms` (the timer never outlives the race). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
const say = (line: string) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}`);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgtide-kill-'));
  chmodSync(dir, 0o755);
  [catalogServer, ...shardServers] = await Promise.all([startTestServer(), startTestServer(), startTestServer()]) as [TestServer, TestServer, TestServer];
  for (const s of shardServers) await (await s.client()).query('CREATE DATABASE app');
  for (const name of ['A', 'B']) {
    const port = await freePort();
    const cfg = join(dir, `${name}.yaml`);
    writeFileSync(cfg, [
      `listen: {host: 127.0.0.1, port: ${port}}`,
      'database: app',
      'users: [{name: app, password: app-password, admin: true}]',
      `catalog: ${catalogServer.url('postgres')}`,
      `shards: [${shardServers.map((s) => s.url('app')).join(', ')}]`,
      'http: {host: 127.0.0.1, port: 0}',
      'pool: {size: 8, wait_timeout_ms: 60000}',
    ].join('\n') + '\n');
    const p: Proxy = { name, cfg, port, proc: null };
    await startProxy(p); // A first: A takes the lease
    proxies.push(p);
  }
  catalog = await Catalog.open(catalogServer.url('postgres'));
  mover = new Mover({ catalog });
  for (const s of shardServers) shards.push(await s.client('app'));
  say('servers and proxies started');
});

after(async () => {
  say('stopping');
  await Promise.allSettled([...openClients].map((c) => c.end()));
  killAllPgtideProcesses();
  await mover?.close().catch(() => {});
  await catalog?.close().catch(() => {});
  await stopAllTestServers();
  if (dir) rmSync(dir, { recursive: true, force: true });
  say('stopped');
});

async function startProxy(p: Proxy): Promise<void> {
  const { proc, port } = await startPgtideProcess(['--config', p.cfg], { PGTIDE_LOG_LEVEL: process.env.PGTIDE_TEST_LOG ?? 'warn' });
  assert.equal(port, p.port);
  p.proc = proc;
}

function alive(p: Proxy): boolean {
  return p.proc !== null && p.proc.exitCode === null && p.proc.signalCode === null && !killedProcs.has(p.proc);
}

async function client(port: number, database = 'app'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: 'app-password', database, connectionTimeoutMillis: 10000, query_timeout: 90000 });
  c.on('error', () => {});
  openClients.add(c);
  try {
    await c.connect();
  } catch (err) {
    openClients.delete(c);
    throw err;
  }
  return c;
}

async function close(c: pg.Client | null): Promise<void> {
  if (!c) return;
  openClients.delete(c);
  await c.end().catch(() => {});
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

/** The live proxy that holds the leader lease (its row says so and its process is the one we run). */
async function leader(timeoutMs = 30000): Promise<Proxy> {
  return eventually('a live leader', async () => {
    const { rows } = await catalog.pool.query<{ pid: number }>("SELECT pid FROM pgtide.proxies WHERE leader AND state = 'alive'");
    return proxies.find((p) => alive(p) && rows.length === 1 && p.proc!.pid === rows[0]!.pid);
  }, timeoutMs, 100);
}

async function jobState(id: number): Promise<string> {
  const { rows } = await catalog.pool.query<{ state: string }>('SELECT state FROM pgtide.jobs WHERE id = $1', [id]);
  return rows[0]!.state;
}

async function waitJobState(id: number, until: (s: string) => boolean, what: string, timeoutMs = 120000, everyMs = 20): Promise<string> {
  return eventually(`job ${id} ${what}`, async () => {
    const s = await jobState(id);
    if (s === 'paused' || s === 'failed') throw Object.assign(new Error(`job ${id} is ${s}: ${JSON.stringify((await catalog.pool.query('SELECT reason, error FROM pgtide.jobs WHERE id = $1', [id])).rows[0])}`), { fatal: true });
    return until(s) ? s : false;
  }, timeoutMs, everyMs);
}

/** Until no server transaction older than `since` is open on the shards (the dead proxy's are gone). */
const settled = new Map<number, Promise<void>>();
function deadTransactionsGone(since: number): Promise<void> {
  let p = settled.get(since);
  if (!p) {
    p = eventually('the killed proxy\'s server transactions to end', async () => {
      for (const s of shards) {
        const { rows } = await s.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start < to_timestamp($1::float8 / 1000)", [since]);
        if (rows[0]!.n > 0) return false;
      }
      return true;
    }, 60000, 50).then(() => {});
    settled.set(since, p);
  }
  return p;
}

// ---------------------------------------------------------------- writers

interface KeyState { balance: number | null; items: [number, number][] }
function show(s: KeyState): string {
  return `${s.balance ?? '∅'}|${s.items.map(([q, n]) => `${q}:${n}`).join(',')}`;
}

interface WriterStats {
  ops: number;
  /** Errors on connections to a proxy the test killed (the write's outcome was then settled by reading). */
  killedConnErrors: number;
  /** Unknown outcomes found committed / not committed. */
  settledCommitted: number;
  settledRolledBack: number;
  /** Errors on a proxy that was NOT killed: must stay empty. */
  survivorErrors: string[];
  /** A settled key in neither the before nor the after state. */
  violations: string[];
}

function startProxyWriters(ledger: Ledger): { stop(): Promise<WriterStats> } {
  let running = true;
  const stats: WriterStats = { ops: 0, killedConnErrors: 0, settledCommitted: 0, settledRolledBack: 0, survivorErrors: [], violations: [] };
  const state = (k: number): KeyState => ({
    balance: ledger.accounts.get(k) ?? null,
    items: [...(ledger.items.get(k) ?? new Map<number, number>())].sort((a, b) => a[0] - b[0]),
  });
  const setState = (k: number, s: KeyState) => {
    if (s.balance === null) {
      ledger.accounts.delete(k);
      ledger.items.delete(k);
    } else {
      ledger.accounts.set(k, s.balance);
      ledger.items.set(k, new Map(s.items));
    }
  };
  const connect = async (home: number): Promise<{ c: pg.Client; proxy: Proxy; proc: ChildProcess }> => {
    return eventually('a writer connection to a live proxy', async () => {
      for (const i of [home, 1 - home]) {
        const p = proxies[i]!;
        if (!alive(p)) continue;
        const proc = p.proc!;
        try {
          return { c: await client(p.port), proxy: p, proc };
        } catch {
          // the proxy died or is restarting: try the other one
        }
      }
      return undefined;
    }, 90000, 100);
  };
  const read = async (c: pg.Client, k: number): Promise<KeyState> => {
    const a = await c.query<{ balance: string }>('SELECT balance FROM accounts WHERE id = $1', [k]);
    const it = await c.query<{ seq: number; qty: number }>('SELECT seq, qty FROM items WHERE account_id = $1 ORDER BY seq', [k]);
    return { balance: a.rows[0] ? Number(a.rows[0].balance) : null, items: it.rows.map((r) => [r.seq, r.qty]) };
  };
  const loops = Array.from({ length: WRITERS }, async (_, w) => {
    const home = w % 2;
    let conn: Awaited<ReturnType<typeof connect>> | null = null;
    let seed = w * 7919 + SEED + 1;
    const r = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    try {
      while (running) {
        if (!conn) conn = await connect(home);
        const k = 1 + w + WRITERS * r(Math.floor(WRITER_KEYS / WRITERS));
        const roll = r(100);
        const seq = 1 + r(3);
        const before = state(k);
        const itemsAfter = new Map(before.items);
        let after: KeyState;
        let steps: [string, unknown[]][];
        if (before.balance === null) {
          steps = [['BEGIN', []], ['INSERT INTO accounts (id, balance, note) VALUES ($1, 0, $2)', [k, `w${w}`]], ['INSERT INTO items (account_id, seq, qty) VALUES ($1, 1, 1)', [k]], ['COMMIT', []]];
          after = { balance: 0, items: [[1, 1]] };
        } else if (roll < 10) {
          // Child rows first: the transaction writes the two tables in the other order than the next one.
          steps = [['BEGIN', []], ['DELETE FROM items WHERE account_id = $1', [k]], ['DELETE FROM accounts WHERE id = $1', [k]], ['COMMIT', []]];
          after = { balance: null, items: [] };
        } else if (roll < 55) {
          steps = [['BEGIN', []], ['UPDATE accounts SET balance = balance + 1 WHERE id = $1', [k]],
            ['INSERT INTO items (account_id, seq, qty) VALUES ($1, $2, 1) ON CONFLICT (account_id, seq) DO UPDATE SET qty = items.qty + 1', [k, seq]], ['COMMIT', []]];
          itemsAfter.set(seq, (itemsAfter.get(seq) ?? 0) + 1);
          after = { balance: before.balance + 1, items: [...itemsAfter].sort((a, b) => a[0] - b[0]) };
        } else {
          // Autocommit, simple protocol (literal key).
          steps = [[`UPDATE accounts SET balance = balance + 1 WHERE id = ${k}`, []]];
          after = { balance: before.balance + 1, items: before.items };
        }
        try {
          for (const [sql, params] of steps) await conn.c.query(sql, params);
          setState(k, after);
          stats.ops++;
          // Drift back to the home proxy now and then, so both proxies keep writers across kills.
          if (conn.proxy !== proxies[home] && stats.ops % 25 === w && alive(proxies[home]!)) {
            await close(conn.c);
            conn = null;
          }
          continue;
        } catch (err) {
          const e = err as Error & { code?: string };
          const lost = conn!;
          const killed = killedProcs.has(lost.proc);
          const killedAt = kills.findLast((kl) => kl.pid === lost.proc.pid)?.at;
          if (killed) stats.killedConnErrors++;
          else stats.survivorErrors.push(`proxy ${lost.proxy.name}, key ${k}, ${steps.map((s) => s[0].split(' ').slice(0, 3).join(' ')).join('; ')}: ${e.code ?? 'no sqlstate'}: ${e.message}`);
          await close(lost.c);
          conn = null;
          // Unknown outcome: settle it from the data once the dead proxy's transactions are over.
          if (killedAt !== undefined) await deadTransactionsGone(killedAt);
          const seen = await eventually(`key ${k} read back`, async () => {
            conn ??= await connect(home);
            try {
              return await read(conn.c, k);
            } catch (readErr) {
              await close(conn.c);
              conn = null;
              throw readErr;
            }
          }, 90000, 100);
          if (show(seen) === show(after)) {
            stats.settledCommitted++;
            setState(k, after);
          } else if (show(seen) === show(before)) {
            stats.settledRolledBack++;
          } else {
            stats.violations.push(`key ${k}: found ${show(seen)}, expected before ${show(before)} or after ${show(after)}`);
            setState(k, seen);
          }
        }
        if (stats.ops % 4 === 0) await sleep(1);
      }
    } catch (err) {
      stats.survivorErrors.push(`writer ${w} stopped: ${(err as Error).message}`);
    } finally {
      await close(conn?.c ?? null);
    }
  });
  return {
    async stop() {
      running = false;
      const t = setInterval(() => process.stderr.write(`# still waiting for the writers (ops ${stats.ops})\n`), 10000);
      try {
        await within(Promise.all(loops), 150000, 'the writers\' stop');
      } finally {
        clearInterval(t);
      }
      return stats;
    },
  };
}

// ---------------------------------------------------------------- kills

/** A preloaded key (never written by the writers) in [lo, hi). */
function keyInRange(lo: bigint, hi: bigint): number {
  for (let k = 100000; k < 100000 + PRELOAD; k++) {
    const h = hashKey('int8', BigInt(k));
    if (h >= lo && h < hi) return k;
  }
  throw new Error('no preloaded key in the range');
}

async function killLeader(job: number, planned: KillKind, delayMs: number): Promise<Kill> {
  const p = await leader();
  assert.ok(proxies.every((q) => alive(q)), `both proxies are up before kill ${kills.length + 1}`);
  const proc = p.proc!;
  if (delayMs > 0) await sleep(delayMs);
  const k: Kill = { job, planned, proxy: p.name, pid: proc.pid!, state: '?', delayMs, at: Date.now() };
  kills.push(k);
  killedProcs.add(proc);
  proc.kill('SIGKILL');
  k.state = await jobState(job);
  say(`kill ${kills.length}: job ${job}, planned ${planned}, proxy ${p.name} (pid ${proc.pid}) after ${delayMs} ms, job was ${k.state}`);
  await eventually(`proxy ${p.name} to exit`, async () => proc.exitCode !== null || proc.signalCode !== null, 10000, 20);
  return k;
}

/**
 * Restart the killed proxy on its port, in the background: its start may wait for the catalog's
 * routing lock, which a cutover blocked by the test's switch lock holds until the next kill.
 */
const restarts: Promise<void>[] = [];
function restart(k: Kill): void {
  const p = proxies.find((q) => q.name === k.proxy)!;
  const started = startProxy(p).then(() => say(`proxy ${p.name} restarted (pid ${p.proc!.pid})`));
  started.catch(() => {}); // awaited (and reported) by restarted()
  restarts.push(started);
}

async function restarted(): Promise<void> {
  await within(Promise.all(restarts), 90000, 'the restart of the killed proxies');
  const l = await leader(30000);
  say(`leader now ${l.name}`);
}

/**
 * An open transaction on the moving range through a proxy: the cutover waits for it (every proxy
 * holds the range and acks once its transactions on it ended; up to the job's budget), so a kill lands there.
 */
let blocker: pg.Client | null = null;
async function openBlocker(on: Proxy, lo: bigint, hi: bigint): Promise<void> {
  const c = await client(on.port);
  blocker = c;
  try {
    await c.query('BEGIN');
    await c.query('UPDATE accounts SET note = note WHERE id = $1', [keyInRange(lo, hi)]);
  } catch {
    // the job may already be cutting over (the statement is held): the kill still lands in it
  }
}

async function killDuring(job: number, lo: bigint, hi: bigint, source: pg.Client, kind: KillKind, holdLater: boolean): Promise<void> {
  // The proxy killed last is back first: every kill leaves one proxy (and its writers) running.
  await restarted();
  const beyond = (s: string, target: string) => (STATE_RANK[s] ?? 9) >= STATE_RANK[target]!;
  if (kind === 'copying' || kind === 'catching_up' || kind === 'cleanup') {
    await waitJobState(job, (s) => beyond(s, kind), `to reach ${kind}`);
    const delay = kind === 'copying' ? rnd(400) : kind === 'catching_up' ? rnd(60) : rnd(3000);
    // A hold kill comes next in this job: its blocker goes on the proxy that will lead the cutover.
    if (holdLater) {
      const l = await leader();
      await openBlocker(proxies.find((p) => p !== l)!, lo, hi);
    }
    restart(await killLeader(job, kind, delay));
    return;
  }
  if (kind === 'cutover-hold') {
    await waitJobState(job, (s) => beyond(s, 'copying'), 'to copy');
    if (!blocker) await openBlocker(await leader(), lo, hi);
    void blocker!.query('SELECT 1').catch(() => {});
    await waitJobState(job, (s) => beyond(s, 'cutover'), 'to start its cutover', 120000, 10);
    // Every live proxy holds the range and acks only once its own transactions on it ended, so the
    // cutover waits for the blocker whichever proxy it is on (the leader may also have won its lease
    // back after a restart, leaving the blocker on the other proxy): the kill lands in the hold.
    const l = await leader();
    say(`blocking transaction on proxy ${proxies.find((p) => p.port === blocker!.port)?.name ?? '?'}, cutover led by ${l.name}`);
    const k = await killLeader(job, kind, rnd(500));
    await close(blocker);
    blocker = null;
    restart(k);
    return;
  }
  // cutover-fenced: the partition's catalog row is locked (armed when the job started), so the
  // routing switch waits right after the fence is up.
  const lock = switchLock!;
  switchLock = null;
  let locked = true;
  try {
    const fenced = await eventually(`job ${job}'s fence on the source`, async () => {
      const s = await jobState(job);
      if (s === 'paused' || s === 'failed' || s === 'cleanup' || s === 'done') throw Object.assign(new Error(`job ${job} is ${s} before its fence was seen`), { fatal: true });
      const { rows } = await source.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_proc WHERE prosrc LIKE $1", [`%mover job ${job}, mode fence%`]);
      return rows[0]!.n > 0;
    }, 120000, 10).catch((err: Error) => err);
    if (fenced instanceof Error) throw fenced;
    const k = await killLeader(job, kind, rnd(100));
    await lock.query('ROLLBACK');
    locked = false;
    restart(k);
  } finally {
    if (locked) await lock.query('ROLLBACK').catch(() => {});
    await close(lock);
  }
}

/** A catalog transaction holding the job's partition row: the mover's routing switch waits for it. */
let switchLock: pg.Client | null = null;
async function armSwitchLock(partitionId: number): Promise<void> {
  const c = new pg.Client({ connectionString: catalogServer.url('postgres') });
  c.on('error', () => {});
  openClients.add(c);
  await c.connect();
  await c.query('BEGIN');
  await c.query('SELECT 1 FROM pgtide.partitions WHERE id = $1 FOR UPDATE', [partitionId]);
  switchLock = c;
}

async function runJobWithKills(partitionId: number, target: number, sourceShard: number, plan: KillKind[]): Promise<void> {
  const { lo, hi } = (await catalog.loadRoutingTable()).partitions.find((p) => p.id === partitionId)!;
  // A job whose cutover is to be held gets a long budget: the held attempt outlasts a restart.
  // A job with a cleanup kill keeps its grace period long enough for the previous restart and the kill.
  const settings = { ...JOB, ...(plan.includes('cutover-hold') ? { cutoverBudgetMs: 20000 } : {}), graceMs: plan.includes('cleanup') ? 12000 : 1000 };
  const jobId = (await mover.startMove(partitionId, target, settings)).id;
  // Armed before the job can reach its cutover, so no earlier kill or restart lets the switch pass it.
  if (plan.includes('cutover-fenced')) await armSwitchLock(partitionId);
  say(`job ${jobId}: partition ${partitionId} from shard ${sourceShard} to shard ${target}`);
  for (const [i, kind] of plan.entries()) await killDuring(jobId, lo, hi, shards[sourceShard]!, kind, plan.indexOf('cutover-hold') > i);
  const end = await waitJobState(jobId, (s) => s === 'done' || s === 'rolled_back' || s === 'cancelled', 'to finish', 180000, 100);
  assert.equal(end, 'done', `job ${jobId} ended ${end}`);
  say(`job ${jobId} done`);
  await restarted();
}

// ---------------------------------------------------------------- the test

test('the leader proxy SIGKILLed at random points of a move, a split-and-move and a move back: the other proxy finishes every job, nothing lost, survivors see no error', { timeout: 540_000 }, async () => {
  // Kill plan: the two cutover kills go to two different jobs; copying and catching_up to the other
  // two jobs (never before the fenced kill in its job: a proxy restarting then would wait behind the
  // blocked routing switch, and the fenced kill would find no other proxy alive); cleanup anywhere.
  const perm = (n: number) => {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rnd(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };
  const plan: KillKind[][] = [[], [], []];
  const [fenced, hold, other] = perm(3) as [number, number, number];
  plan[fenced]!.push('cutover-fenced');
  plan[hold]!.push('cutover-hold');
  const early = rnd(2) === 0 ? ['copying', 'catching_up'] as const : ['catching_up', 'copying'] as const;
  plan[hold]!.push(early[0]);
  plan[other]!.push(early[1]);
  plan[rnd(3)]!.push('cleanup');
  for (const p of plan) p.sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
  say(`kill plan (PGTIDE_KILL_SEED=${SEED}): move [${plan[0]!.join(', ')}], split+move [${plan[1]!.join(', ')}], move back [${plan[2]!.join(', ')}]`);

  assert.equal((await leader()).name, 'A', 'the first proxy holds the lease');
  const appA = await client(proxies[0]!.port);
  for (const ddl of DDL.split(';').filter((d) => d.trim())) await appA.query(ddl);
  const admin = await client(proxies[0]!.port, 'pgtide');
  await admin.query('SET AUTOPILOT off');
  await admin.query('SHARD TABLE accounts BY (id) PARTITIONS 4');
  await admin.query('SHARD TABLE items BY (account_id) COLOCATE WITH accounts');
  const version = Number((await admin.query('SHOW VERSION')).rows[0].routing_version);
  await eventually('both proxies route by the sharded tables', async () => {
    const { rows } = await catalog.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pgtide.proxies WHERE state = 'alive' AND routing_version >= $1", [version]);
    return rows[0]!.n === 2;
  }, 10000);
  await close(admin);
  await close(appA);

  const ledger = new Ledger();
  const view = new RoutingView(catalog);
  await view.refresh();
  await preload(shards, view, ledger, 100000, PRELOAD);
  const writers = startProxyWriters(ledger);
  let stats: WriterStats | null = null;
  try {
    await sleep(500);
    const partitions = async () => (await catalog.loadRoutingTable()).partitions.filter((p) => p.keyspaceId === view.index.tableInfo('accounts')!.keyspaceId).sort((a, b) => (a.lo < b.lo ? -1 : 1));
    // 1. Move a partition of shard 0 to shard 1.
    const p = (await partitions()).find((q) => q.shardId === 0)!;
    await runJobWithKills(p.id, 1, 0, plan[0]!);
    // 2. Split another partition of shard 0 and move its upper half to shard 1.
    const q = (await partitions()).find((r) => r.shardId === 0)!;
    const splitter = await client((await leader()).port, 'pgtide');
    await splitter.query(`SPLIT PARTITION ${q.id}`);
    const halves = (await partitions()).filter((r) => r.lo === q.lo || r.hi === q.hi);
    assert.equal(halves.length, 2, 'the partition was split in two');
    const [lower, upper] = halves as [typeof q, typeof q];
    await runJobWithKills(upper.id, 1, 0, plan[1]!);
    // 3. Move the upper half back and merge the halves again.
    await runJobWithKills(upper.id, 0, 1, plan[2]!);
    await close(splitter);
    const merger = await client((await leader()).port, 'pgtide');
    await merger.query(`MERGE PARTITIONS ${lower.id}, ${upper.id}`);
    await close(merger);
    await sleep(500);
  } finally {
    say('stopping the writers');
    stats = await writers.stop();
    say(`writers: ${JSON.stringify({ ...stats, survivorErrors: stats.survivorErrors.slice(0, 10), violations: stats.violations.slice(0, 10) })}`);
  }
  say(`writers: ${stats.ops} acknowledged writes, ${stats.killedConnErrors} lost with a killed proxy (settled: ${stats.settledCommitted} committed, ${stats.settledRolledBack} not), ${stats.survivorErrors.length} errors on live proxies`);
  say(`kills: ${kills.map((k) => `${k.planned}→${k.state}`).join(', ')}`);

  assert.equal(kills.length, 5, 'five kills');
  assert.ok(kills.some((k) => k.planned === 'cutover-hold' && k.state === 'cutover'), 'one kill while the cutover held traffic');
  assert.ok(kills.some((k) => k.planned === 'cutover-fenced' && k.state === 'cutover'), 'one kill with the source fenced, before the routing switch');
  assert.ok(new Set(kills.map((k) => k.proxy)).size === 2, 'both proxies were killed as leader');
  assert.ok(stats.ops > 200, `writers made progress (${stats.ops})`);
  assert.ok(stats.killedConnErrors > 0, 'some writers were connected to a killed proxy');
  assert.deepEqual(stats.violations, [], 'every unknown outcome is either the state before or after the write');
  assert.deepEqual(stats.survivorErrors, [], 'writers on proxies that were not killed saw no error');
  // Conservation and placement.
  await checkInvariants(shards, catalog, ledger);
  for (const [i, s] of shards.entries()) {
    const { rows } = await s.query<{ triggers: number; prepared: number }>(
      "SELECT (SELECT count(*)::int FROM pg_trigger WHERE tgname LIKE 'pgtide_capture%') AS triggers, (SELECT count(*)::int FROM pg_prepared_xacts) AS prepared");
    assert.deepEqual(rows[0], { triggers: 0, prepared: 0 }, `shard ${i}: no capture trigger or prepared transaction left`);
  }
  const jobs = (await catalog.pool.query<{ state: string }>('SELECT state FROM pgtide.jobs ORDER BY id')).rows.map((r) => r.state);
  assert.deepEqual(jobs, ['done', 'done', 'done']);
});
