// Ad-hoc: one embedded server + pgtide (1 shard) + pgbench -S; prints the proxy's CPU µs per transaction.
// Run with --cpu-prof to see where the proxy's time goes: node --cpu-prof dist/bench/proxy/profile-one.js
import { readdirSync, readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import pino from 'pino';
import { freePort } from '../../cli/embedded-server.js';
import { runProxy } from '../../cli/run-proxy.js';
import { pgbenchInit, proxyConfig, runPgbench, psql, startBarePipe, startScratchPostgres } from './pgbench.js';

const password = 'bench-password';
const scratch = await startScratchPostgres('pgtide-prof-', password);
const s = scratch.server;
try {
  await pgbenchInit(s);
  await psql(s, 'postgres', 'CREATE DATABASE pgtide_catalog');
  const proxy = process.env.PIPE ? await startBarePipe(s.port) : await runProxy(proxyConfig(s.url('pgtide_catalog'), [s.url('bench')], await freePort(), password, 16), pino({ level: 'warn' }));
  const t = { name: 'pgtide', port: proxy.port, user: 'postgres', password, database: 'bench' };
  await runPgbench(t, 8, 2, process.env.MODE ? ['-M', process.env.MODE] : []);
  // PROFILE=file.cpuprofile: a CPU profile of the measured window only (no startup, no warm-up).
  const inspector = process.env.PROFILE ? new Session() : null;
  if (inspector) {
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
    await inspector.post('Profiler.start');
  }
  const threads = (): Map<string, number> => {
    const m = new Map<string, number>();
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        m.set(`${tid} ${name}`, Number(f[11]) + Number(f[12]));
      } catch { /* thread gone */ }
    }
    return m;
  };
  const t0 = threads();
  const c0 = process.cpuUsage();
  // MODE=extended|prepared: pgbench's query mode (default simple).
  const r = await runPgbench(t, 8, Number(process.env.SECONDS ?? 10), process.env.MODE ? ['-M', process.env.MODE] : []);
  const c1 = process.cpuUsage(c0);
  const t1 = threads();
  if (process.env.THREADS) for (const [k, v] of t1) if (v - (t0.get(k) ?? 0) > 0) process.stdout.write(`  thread ${k}: ${v - (t0.get(k) ?? 0)} ticks\n`);
  if (inspector) {
    const { profile } = await inspector.post('Profiler.stop');
    writeFileSync(process.env.PROFILE!, JSON.stringify(profile));
  }
  const seconds = Number(process.env.SECONDS ?? 10);
  process.stdout.write(`tps ${r.tps.toFixed(0)}; proxy cpu ${((c1.user + c1.system) / (r.tps * seconds)).toFixed(1)} µs/tx (user ${(c1.user / (r.tps * seconds)).toFixed(1)}, system ${(c1.system / (r.tps * seconds)).toFixed(1)})\n`);
  await ('stop' in proxy ? proxy.stop() : proxy.close());
} finally {
  await scratch.stop();
}
