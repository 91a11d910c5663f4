// Bench: the proxy's p99 latency under pgbench select-only (8 clients) with and without a forecast + LSTM training run in progress.
//
// One embedded server holds the pgbench data and the catalog; one in-process pgtide proxy (as in
// production: the leader forecasts in the proxy's own process, in worker threads). The catalog is
// given four weeks of synthetic hourly load history for pgbench_accounts' partitions, and the
// autopilot retrains the global LSTM on every run (retrain_h = 0). Rounds alternate: pgbench
// alone, then pgbench while forecast runs are kept going back to back. p99 comes from pgbench's
// per-transaction log (-l), so it is the latency the client saw through the proxy.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import type { ProxyConfig } from '../config/config-file.js';
import { freePort, startEmbeddedServer, type EmbeddedServer } from '../cli/embedded-server.js';
import { runProxy } from '../cli/run-proxy.js';

const exec = promisify(execFile);
const CLIENTS = 8;
const HOUR = 3_600_000;

async function sql(server: EmbeddedServer, db: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: server.url(db) });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

function quantile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** pgbench -S through the proxy with a per-transaction log; returns tps and latency quantiles (ms). */
async function pgbench(port: number, password: string, seconds: number, dir: string): Promise<{ tps: number; p50: number; p99: number; n: number }> {
  rmSync(dir, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const { stdout } = await exec('pgbench', ['-n', '-S', '-M', 'simple', '-c', String(CLIENTS), '-j', '2', '-T', String(seconds), '-l', '--log-prefix', join(dir, 'tx'),
    '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'bench'], { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable' }, maxBuffer: 1 << 24 });
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? NaN);
  const lat: number[] = [];
  for (const f of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const parts = line.split(' ');
      if (parts.length >= 3) lat.push(Number(parts[2]) / 1000);
    }
  }
  lat.sort((a, b) => a - b);
  return { tps, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), n: lat.length };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function run(): Promise<object> {
  const say = (l: string) => process.stdout.write(`${l}\n`);
  try {
    await exec('sh', ['-c', 'command -v pgbench']);
  } catch {
    say('pgbench is not installed: skipping');
    return { skipped: 'pgbench not installed' };
  }
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-train-bench-'));
  chmodSync(dir, 0o755);
  const password = 'bench-password';
  const server = await startEmbeddedServer({ dataDir: join(dir, 'pg'), port: await freePort(), user: 'postgres', password, ephemeral: true, settings: { max_connections: 100 } });
  try {
    await sql(server, 'postgres', 'CREATE DATABASE bench');
    await sql(server, 'postgres', 'CREATE DATABASE pgtide_catalog');
    await exec('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', 'bench'], { env: { ...process.env, PGPASSWORD: password } });
    const config: ProxyConfig = {
      listen: { host: '127.0.0.1', port: await freePort() }, database: 'bench',
      users: [{ name: 'postgres', password, admin: true }], auth: 'scram-sha-256',
      pool: { mode: 'transaction', size: 16, waitTimeoutMs: 30000, idleTimeoutMs: 600000 },
      catalog: server.url('pgtide_catalog'), shards: [server.url('bench')],
      tables: { sharded: [{ name: 'pgbench_accounts', key: 'aid', type: 'int4' }], reference: ['pgbench_branches', 'pgbench_tellers', 'pgbench_history'] },
      partitions: 8, http: { host: '127.0.0.1', port: 0 }, routeCacheSize: 10000, logLevel: 'warn',
    };
    const proxy = await runProxy(config, pino({ level: 'warn' }, pino.destination(2)));
    try {
      const cat = proxy.catalog;
      for (const [k, v] of Object.entries({ step_s: 3600, horizon: 24, history_steps: 700, lstm: 'on', retrain_h: 0, mode: 'recommend', interval_s: 86400 })) {
        await cat.setSetting(`autopilot.${k}`, String(v));
      }
      // Four weeks of hourly history for 8 partitions: daily × weekly season with noise.
      const parts = proxy.server.routingTable().partitions.map((p) => p.id);
      const end = Math.floor(Date.now() / HOUR) * HOUR;
      const b: string[] = [], pid: number[] = [], reads: number[] = [];
      let seed = 7;
      for (let i = 28 * 24; i >= 1; i--) {
        const t = end - i * HOUR;
        const d = new Date(t);
        for (const [j, p] of parts.entries()) {
          seed = (seed * 48271) % 2147483647;
          const level = 50 * (j + 1) * (1 + 0.6 * Math.sin((2 * Math.PI * d.getUTCHours()) / 24)) * (d.getUTCDay() % 6 === 0 ? 0.6 : 1);
          b.push(d.toISOString()); pid.push(p); reads.push(level * (0.9 + 0.2 * (seed / 2147483647)) * 3600);
        }
      }
      await cat.pool.query(`INSERT INTO pgtide.load_history (bucket, proxy_id, partition_id, table_name, interval_s, reads)
        SELECT b, 999, p, 'pgbench_accounts', 3600, r FROM unnest($1::timestamptz[], $2::int[], $3::float8[]) AS u(b, p, r)`, [b, pid, reads]);
      say(`pgbench -S -c ${CLIENTS} -j 2 through pgtide, ${seconds} s × ${rounds} rounds each; forecast: ${parts.length} partitions × ${28 * 24} hourly points, LSTM retrained every run`);
      await pgbench(config.listen.port, password, 3, join(dir, 'warm'));
      const base: { tps: number; p50: number; p99: number }[] = [];
      const busy: { tps: number; p50: number; p99: number }[] = [];
      const runTimes: number[] = [];
      for (let r = 0; r < rounds; r++) {
        base.push(await pgbench(config.listen.port, password, seconds, join(dir, `base${r}`)));
        let stop = false;
        const loop = (async () => {
          while (!stop) {
            const t0 = Date.now();
            await proxy.autopilot.runOnce('bench');
            runTimes.push(Date.now() - t0);
          }
        })();
        await new Promise((res) => setTimeout(res, 500)); // the worker is up and fitting
        busy.push(await pgbench(config.listen.port, password, seconds, join(dir, `busy${r}`)));
        stop = true;
        await loop;
        say(`round ${r + 1}: p99 alone ${base[r]!.p99.toFixed(3)} ms, during training ${busy[r]!.p99.toFixed(3)} ms`);
      }
      const last = await cat.pool.query<{ lstm: string; ms: number }>('SELECT lstm, ms FROM pgtide.forecast_runs ORDER BY id DESC LIMIT 1');
      const res = {
        clients: CLIENTS, seconds, rounds,
        alone: { p99Ms: median(base.map((x) => x.p99)), p50Ms: median(base.map((x) => x.p50)), tps: median(base.map((x) => x.tps)) },
        training: { p99Ms: median(busy.map((x) => x.p99)), p50Ms: median(busy.map((x) => x.p50)), tps: median(busy.map((x) => x.tps)) },
        forecastRunMs: median(runTimes), forecastRuns: runTimes.length, lstm: last.rows[0]?.lstm ?? null,
        p99Ratio: 0,
      };
      res.p99Ratio = res.training.p99Ms / res.alone.p99Ms;
      say('');
      say(`${'variant'.padEnd(22)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}${'tps'.padStart(10)}`);
      say(`${'pgbench alone'.padEnd(22)}${res.alone.p50Ms.toFixed(3).padStart(10)}${res.alone.p99Ms.toFixed(3).padStart(10)}${res.alone.tps.toFixed(0).padStart(10)}`);
      say(`${'during forecast+LSTM'.padEnd(22)}${res.training.p50Ms.toFixed(3).padStart(10)}${res.training.p99Ms.toFixed(3).padStart(10)}${res.training.tps.toFixed(0).padStart(10)}`);
      say(`p99 ratio (training / alone): ${res.p99Ratio.toFixed(3)} (issue 7 asks ≤ 1.10); ${runTimes.length} forecast runs, median ${(res.forecastRunMs / 1000).toFixed(1)} s each`);
      return res;
    } finally {
      await proxy.stop();
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
