// pgbench select-only by primary key, side by side: direct, PgBouncer, bare Node pipe, pgtide 1 and 2 shards.
//
// Every target is measured in the same run, interleaved round by round (so drift on a noisy
// machine hits all of them alike), and the median TPS over rounds is reported with ratios.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import type { ProxyConfig } from '../../config/config-file.js';
import { freePort, startEmbeddedServer, type EmbeddedServer } from '../../cli/embedded-server.js';
import { runProxy, type RunningProxy } from '../../cli/run-proxy.js';

const exec = promisify(execFile);

export interface PgbenchResult {
  target: string;
  clients: number;
  tps: number[];
  latencyMs: number[];
  medianTps: number;
  medianLatencyMs: number;
  /** CPU the proxy itself spent per transaction (user + system, µs), when it can be measured. */
  cpuUsPerTx: number[];
  medianCpuUsPerTx: number | null;
}

interface Target {
  name: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** CPU seconds the proxy has used so far (null: not measurable, e.g. the server itself). */
  cpuSeconds?: () => number;
}

/** This process's CPU (the bare pipe and the pgtide targets run in it, one at a time). */
function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** A child process's CPU from /proc (PgBouncer); clock ticks are 100 Hz on Linux. */
function procCpuSeconds(pid: number): () => number {
  return () => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  };
}

const SCALE = 1;

async function which(cmd: string): Promise<string | null> {
  try {
    const { stdout } = await exec('sh', ['-c', `command -v ${cmd}`]);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function runPgbench(t: Target, clients: number, seconds: number, extraArgs: string[] = []): Promise<{ tps: number; latencyMs: number }> {
  const args = ['-n', '-S', '-M', 'simple', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds),
    '-h', '127.0.0.1', '-p', String(t.port), '-U', t.user, ...extraArgs, t.database];
  const { stdout } = await exec('pgbench', args, { env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' }, maxBuffer: 1 << 24 });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1];
  const lat = /latency average = ([\d.]+) ms/.exec(stdout)?.[1];
  if (!tps || !lat) throw new Error(`could not read pgbench output:\n${stdout}`);
  return { tps: Number(tps), latencyMs: Number(lat) };
}

/** The ceiling of any Node proxy: forwards bytes untouched, one upstream socket per client. */
export function startBarePipe(upstreamPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address() as net.AddressInfo;
      resolve({ port: a.port, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

async function startPgBouncer(dir: string, upstreamPort: number, password: string, poolSize: number): Promise<{ port: number; proc: ChildProcess } | null> {
  const bin = await which('pgbouncer');
  if (!bin) return null;
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'userlist.txt'), `"postgres" "${password}"\n`);
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `bench = host=127.0.0.1 port=${upstreamPort} dbname=bench`,
    '[pgbouncer]',
    `listen_addr = 127.0.0.1`,
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    'pool_mode = transaction',
    `default_pool_size = ${poolSize}`,
    'max_client_conn = 1000',
    'ignore_startup_parameters = extra_float_digits',
    `logfile = ${join(dir, 'pgbouncer.log')}`,
  ].join('\n') + '\n');
  chmodSync(dir, 0o777);
  // PgBouncer refuses to run as root; the embedded servers already created a postgres user.
  const proc = spawn(bin, process.getuid?.() === 0 ? ['-u', 'postgres', join(dir, 'pgbouncer.ini')] : [join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return { port, proc };
  }
  proc.kill();
  return null;
}

export async function psql(server: EmbeddedServer, db: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: server.url(db) });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * One throwaway Postgres for an ad-hoc proxy measurement (bench/proxy/*.ts scripts), in a temporary
 * directory its server user can enter; stop() stops it and removes the directory.
 */
export async function startScratchPostgres(prefix: string, password: string): Promise<{ server: EmbeddedServer; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const server = await startEmbeddedServer({ dataDir: join(dir, 'pg'), port: await freePort(), user: 'postgres', password, ephemeral: true, settings: { max_connections: 200 } });
    return { server, stop: async () => { await server.stop(); remove(); } };
  } catch (err) {
    remove();
    throw err;
  }
}

export async function pgbenchInit(server: EmbeddedServer): Promise<void> {
  await psql(server, 'postgres', 'CREATE DATABASE bench');
  await exec('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', '127.0.0.1', '-p', String(server.port), '-U', server.user, 'bench'], {
    env: { ...process.env, PGPASSWORD: server.password },
  });
}

export function proxyConfig(catalogUrl: string, shardUrls: string[], port: number, password: string, poolSize: number): ProxyConfig {
  return {
    listen: { host: '127.0.0.1', port },
    database: 'bench',
    users: [{ name: 'postgres', password, admin: true }],
    auth: 'scram-sha-256',
    pool: { mode: 'transaction', size: poolSize, waitTimeoutMs: 30000, idleTimeoutMs: 600000 },
    catalog: catalogUrl,
    shards: shardUrls,
    tables: { sharded: [{ name: 'pgbench_accounts', key: 'aid', type: 'int4' }, { name: 'pgbench_history', key: 'aid', type: 'int4' }], reference: ['pgbench_branches', 'pgbench_tellers'] },
    partitions: 8,
    http: { host: '127.0.0.1', port: 0 },
    routeCacheSize: 10000,
    logLevel: 'warn',
  };
}

export interface ProxyBenchOptions {
  clients?: number[];
  seconds?: number;
  rounds?: number;
  poolSize?: number;
  /** Extra variants of pgtide to compare (e.g. recording off) — given the running proxy. */
  log?: (line: string) => void;
}

export async function run(opts: ProxyBenchOptions = {}): Promise<object> {
  const say = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  if (!(await which('pgbench'))) {
    say('pgbench is not installed: skipping the proxy benchmark (apt-get install postgresql-client)');
    return { skipped: 'pgbench not installed' };
  }
  // BENCH_CLIENTS=8 (comma-separated) narrows a run to the client counts of interest.
  const clientsList = opts.clients ?? (process.env.BENCH_CLIENTS ? process.env.BENCH_CLIENTS.split(",").map(Number) : [1, 8, 32]);
  const seconds = opts.seconds ?? Number(process.env.BENCH_SECONDS ?? 5);
  const rounds = opts.rounds ?? Number(process.env.BENCH_ROUNDS ?? 3);
  // BENCH_PROTOCOL=extended: pgbench -M extended (unnamed Parse/Bind/Execute per statement, as libpq's
  // PQexecParams); prepared: -M prepared (Bind/Execute of named statements, as pgjdbc once it prepares).
  const protocol = process.env.BENCH_PROTOCOL === 'extended' || process.env.BENCH_PROTOCOL === 'prepared' ? process.env.BENCH_PROTOCOL : 'simple';
  const poolSize = opts.poolSize ?? 16;
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-bench-'));
  chmodSync(dir, 0o755);
  const password = 'bench-password';
  const servers: EmbeddedServer[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    const [a, b] = await Promise.all([0, 1].map(async (i) => {
      const s = await startEmbeddedServer({ dataDir: join(dir, `pg${i}`), port: await freePort(), user: 'postgres', password, ephemeral: true, settings: { max_connections: 200 } });
      servers.push(s);
      return s;
    })) as [EmbeddedServer, EmbeddedServer];
    say('initialising pgbench data (scale 1) on two servers…');
    await Promise.all([pgbenchInit(a), pgbenchInit(b)]);
    await psql(a, 'postgres', 'CREATE DATABASE bench_s0 TEMPLATE bench');
    await psql(a, 'postgres', 'CREATE DATABASE pgtide_catalog_1');
    await psql(a, 'postgres', 'CREATE DATABASE pgtide_catalog_2');

    const log = pino({ level: 'warn' }, pino.destination(2));
    const targets: Target[] = [{ name: 'direct', port: a.port, user: 'postgres', password, database: 'bench' }];

    // Named statements break in PgBouncer's transaction mode before 1.21 (max_prepared_statements);
    // Debian here ships 1.18: "prepared statement P_0 already exists".
    const bouncer = protocol === 'prepared' ? null : await startPgBouncer(join(dir, 'pgbouncer'), a.port, password, poolSize);
    if (protocol === 'prepared') say('pgbench -M prepared: PgBouncer left out (transaction mode cannot keep named statements before 1.21)');
    if (bouncer) {
      cleanups.push(() => void bouncer.proc.kill('SIGTERM'));
      targets.push({ name: 'pgbouncer', port: bouncer.port, user: 'postgres', password, database: 'bench', ...(bouncer.proc.pid !== undefined && process.platform === 'linux' ? { cpuSeconds: procCpuSeconds(bouncer.proc.pid) } : {}) });
    } else if (protocol !== 'prepared') {
      say('pgbouncer not installed (apt-get install pgbouncer): measuring without it');
    }
    const pipe = await startBarePipe(a.port);
    cleanups.push(() => pipe.close());
    targets.push({ name: 'bare-pipe', port: pipe.port, user: 'postgres', password, database: 'bench', cpuSeconds: ownCpuSeconds });

    const one: RunningProxy = await runProxy(proxyConfig(a.url('pgtide_catalog_1'), [a.url('bench')], await freePort(), password, poolSize), log);
    cleanups.push(() => one.stop());
    targets.push({ name: 'pgtide-1shard', port: one.port, user: 'postgres', password, database: 'bench', cpuSeconds: ownCpuSeconds });

    // The same 1-shard proxy with pipelining off (pool.pipelining: false): every statement on a
    // server connection of its own, as PgBouncer does; what lanes (proxy/pool/pipeline.ts) add.
    await psql(a, 'postgres', 'CREATE DATABASE pgtide_catalog_4');
    const unpiped = proxyConfig(a.url('pgtide_catalog_4'), [a.url('bench')], await freePort(), password, poolSize);
    const noPipe: RunningProxy = await runProxy({ ...unpiped, pool: { ...unpiped.pool, pipelining: false } }, log);
    cleanups.push(() => noPipe.stop());
    targets.push({ name: 'pgtide-nopipelining', port: noPipe.port, user: 'postgres', password, database: 'bench', cpuSeconds: ownCpuSeconds });

    // The same 1-shard proxy with access recording off: the cost of recording, side by side.
    await psql(a, 'postgres', 'CREATE DATABASE pgtide_catalog_3');
    const noRec: RunningProxy = await runProxy(proxyConfig(a.url('pgtide_catalog_3'), [a.url('bench')], await freePort(), password, poolSize), log, { record: false });
    cleanups.push(() => noRec.stop());
    targets.push({ name: 'pgtide-norecord', port: noRec.port, user: 'postgres', password, database: 'bench', cpuSeconds: ownCpuSeconds });

    // Shard 0 of the 2-shard cluster shares server a with the 1-shard target, in a copy of its data.
    const two: RunningProxy = await runProxy(proxyConfig(a.url('pgtide_catalog_2'), [a.url('bench_s0'), b.url('bench')], await freePort(), password, poolSize), log);
    cleanups.push(() => two.stop());
    // Keep on each server only the accounts its partitions own, as a real sharded load would.
    const routing = two.server.routingTable();
    const ks = routing.tables.find((t) => t.name === 'pgbench_accounts')!.keyspaceId!;
    for (const [i, server, db] of [[0, a, 'bench_s0'], [1, b, 'bench']] as const) {
      const ranges = routing.partitions.filter((p) => p.keyspaceId === ks && p.shardId === i)
        .map((p) => `(hashint8extended(aid::int8, 0) >= ${p.lo} AND hashint8extended(aid::int8, 0) < ${p.hi})`).join(' OR ');
      await psql(server, db, `DELETE FROM pgbench_accounts WHERE NOT (${ranges})`);
      await psql(server, db, 'VACUUM ANALYZE pgbench_accounts');
    }
    targets.push({ name: 'pgtide-2shards', port: two.port, user: 'postgres', password, database: 'bench', cpuSeconds: ownCpuSeconds });

    // This bench measures the hot path. The forecaster (a worker-thread LSTM on each leader, one
    // interval after start) would otherwise train in this very process and be billed to pgtide's
    // CPU per transaction; its effect on latency is measured on its own by `bench training-impact`.
    for (const p of [one, noPipe, noRec, two]) await p.autopilot.stop();

    const results: PgbenchResult[] = [];
    for (const clients of clientsList) {
      const perTarget = new Map<string, { tps: number[]; lat: number[]; cpu: number[] }>(targets.map((t) => [t.name, { tps: [], lat: [], cpu: [] }]));
      for (let r = 0; r < rounds; r++) {
        for (const t of targets) {
          const cpu0 = t.cpuSeconds?.();
          const m = await runPgbench(t, clients, seconds, ['-M', protocol]);
          const v = perTarget.get(t.name)!;
          v.tps.push(m.tps);
          v.lat.push(m.latencyMs);
          // CPU per transaction is far steadier than TPS on a shared machine: it is the proxy's own cost.
          if (cpu0 !== undefined) v.cpu.push(((t.cpuSeconds!() - cpu0) * 1e6) / (m.tps * seconds));
        }
      }
      for (const t of targets) {
        const v = perTarget.get(t.name)!;
        results.push({ target: t.name, clients, tps: v.tps, latencyMs: v.lat, medianTps: median(v.tps), medianLatencyMs: median(v.lat), cpuUsPerTx: v.cpu, medianCpuUsPerTx: v.cpu.length ? median(v.cpu) : null });
      }
    }
    const byKey = (target: string, clients: number) => results.find((r) => r.target === target && r.clients === clients);
    say('');
    say('recording cost (1 - recording on / off, pgtide 1 shard): ' + clientsList.map((c) => `${c} clients ${((1 - byKey('pgtide-1shard', c)!.medianTps / byKey('pgtide-norecord', c)!.medianTps) * 100).toFixed(1)} %`).join(', '));
    const q = one.server.counters;
    say(`pgtide 1 shard: ${q.queries} statements, ${(100 * q.pipelined / Math.max(1, q.queries)).toFixed(1)} % of them pipelined`);
    say('pipelining gain (pgtide 1 shard, lanes on / off): ' + clientsList.map((c) => `${c} clients ${(byKey('pgtide-1shard', c)!.medianTps / byKey('pgtide-nopipelining', c)!.medianTps).toFixed(2)}×`).join(', '));
    say(`pgbench -S -M ${protocol}, ${seconds}s × ${rounds} rounds per cell, median TPS (avg latency ms); ratios to direct / pgbouncer / bare pipe`);
    say(`${'target'.padEnd(16)}${clientsList.map((c) => `${c} clients`.padStart(34)).join('')}`);
    for (const t of targets) {
      let line = t.name.padEnd(16);
      for (const c of clientsList) {
        const r = byKey(t.name, c)!;
        const d = byKey('direct', c)!.medianTps;
        const pb = byKey('pgbouncer', c)?.medianTps;
        const bp = byKey('bare-pipe', c)!.medianTps;
        const ratios = `${(r.medianTps / d).toFixed(2)}/${pb ? (r.medianTps / pb).toFixed(2) : '-'}/${(r.medianTps / bp).toFixed(2)}`;
        line += `${r.medianTps.toFixed(0)} (${r.medianLatencyMs.toFixed(3)}) ${ratios}`.padStart(34);
      }
      say(line);
    }
    say('');
    say('proxy CPU per transaction (µs, user + system, median over rounds; pgtide and the pipe run in this process; forecaster stopped)');
    say(`${'target'.padEnd(16)}${clientsList.map((c) => `${c} clients`.padStart(14)).join('')}`);
    for (const t of targets.filter((x) => x.cpuSeconds)) {
      say(t.name.padEnd(16) + clientsList.map((c) => (byKey(t.name, c)!.medianCpuUsPerTx?.toFixed(1) ?? '-').padStart(14)).join(''));
    }
    const summary: Record<string, number> = {};
    for (const c of clientsList) {
      const p = byKey('pgtide-1shard', c)!.medianTps;
      summary[`pgtide_vs_bare_pipe_${c}`] = p / byKey('bare-pipe', c)!.medianTps;
      const pb = byKey('pgbouncer', c)?.medianTps;
      if (pb) summary[`pgtide_vs_pgbouncer_${c}`] = p / pb;
      summary[`pgtide2_vs_direct_${c}`] = byKey('pgtide-2shards', c)!.medianTps / byKey('direct', c)!.medianTps;
      summary[`recording_cost_${c}`] = 1 - p / byKey('pgtide-norecord', c)!.medianTps;
      summary[`pipelining_gain_${c}`] = p / byKey('pgtide-nopipelining', c)!.medianTps;
      const cpu = (name: string) => byKey(name, c)?.medianCpuUsPerTx;
      if (cpu('pgtide-1shard') && cpu('bare-pipe')) summary[`pgtide_cpu_per_tx_vs_bare_pipe_${c}`] = cpu('pgtide-1shard')! / cpu('bare-pipe')!;
      if (cpu('pgtide-1shard') && cpu('pgbouncer')) summary[`pgtide_cpu_per_tx_vs_pgbouncer_${c}`] = cpu('pgtide-1shard')! / cpu('pgbouncer')!;
    }
    return { command: 'npm run bench -- proxy', protocol, seconds, rounds, poolSize, scale: SCALE, results, summary };
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    await Promise.allSettled(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
