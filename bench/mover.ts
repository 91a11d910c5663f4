// Mover throughput: one partition's rows moved by a job vs a plain COPY TO STDOUT | COPY FROM STDIN pipe between the same servers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedServer, type EmbeddedServer } from '../cli/embedded-server.js';
import { Catalog } from '../config/catalog.js';
import { copyPipe, Mover } from '../mover/index.js';

const ROWS = Number(process.env.PGTIDE_BENCH_MOVER_ROWS ?? 200000);
const ROUNDS = 2;

async function server(): Promise<{ s: EmbeddedServer; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgtide-bench-mover-'));
  const s = await startEmbeddedServer({ dataDir: dir, port: await freePort(), user: 'postgres', password: 'bench', ephemeral: true });
  return { s, dir };
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const TABLE = 'CREATE TABLE accounts (id int8 PRIMARY KEY, balance int8 NOT NULL, note text)';

export async function run(): Promise<object> {
  const servers = await Promise.all([server(), server(), server()]);
  const [cat, s0, s1] = servers.map((x) => x.s) as [EmbeddedServer, EmbeddedServer, EmbeddedServer];
  const rows: { method: string; rows: number; bytes: number; seconds: number; rowsPerSec: number; mbPerSec: number }[] = [];
  let cutoverPauses: number[] = [];
  try {
    for (const s of [s0, s1]) {
      const c = await client(s.url('postgres'));
      await c.query('CREATE DATABASE app');
      await c.end();
    }
    const a = await client(s0.url('app'));
    const b = await client(s1.url('app'));
    await a.query(TABLE);
    await b.query(TABLE);
    const catalog = await Catalog.open(cat.url('postgres'));
    await catalog.ensureShards([s0.url('app'), s1.url('app')]);
    await catalog.shardTable('accounts', 'id', 'int8', { partitions: 4 });
    const part = (await catalog.loadRoutingTable()).partitions[0]!; // [-2^63, -2^62) on shard 0
    await a.query(`INSERT INTO accounts SELECT g, g, md5(g::text) || md5((g * 7)::text)
      FROM generate_series(1, ${ROWS * 4}) g WHERE hashint8extended(g, 0) < '${part.hi}'::int8`);
    await a.query('VACUUM ANALYZE accounts');
    const n = Number((await a.query('SELECT count(*) AS n FROM accounts')).rows[0].n);
    const mover = new Mover({ catalog, settings: { graceMs: 0, chunkRows: 20000, maxChunkRows: 50000, cutoverBudgetMs: 1000, latencyFactor: Number(process.env.PGTIDE_BENCH_MOVER_THROTTLE ?? Infinity) },
      ...(process.env.PGTIDE_BENCH_TRACE ? { hooks: { onStep: (id: number, step: string) => void process.stderr.write(`job ${id} ${step}\n`) }, log: { info: (o: object, m: string) => process.stderr.write(`${m} ${JSON.stringify(o)}\n`), warn: () => {} } } : {}) });
    for (let round = 0; round < ROUNDS; round++) {
      // Baseline: the plain pipe into an empty copy of the table (same indexes) on the target.
      // Rounds alternate direction: the rows are on shard 0 in even rounds, on shard 1 in odd ones.
      const [src, dst] = round % 2 === 0 ? [a, b] : [b, a];
      await dst.query('DROP TABLE IF EXISTS pipe_copy; CREATE TABLE pipe_copy (id int8 PRIMARY KEY, balance int8 NOT NULL, note text)');
      const t0 = performance.now();
      const p = await copyPipe(src, 'COPY accounts TO STDOUT', dst, 'COPY pipe_copy FROM STDIN');
      const ps = (performance.now() - t0) / 1000;
      rows.push({ method: 'COPY pipe', rows: p.rows, bytes: p.bytes, seconds: ps, rowsPerSec: p.rows / ps, mbPerSec: p.bytes / ps / 1e6 });
      // The move there (odd rounds move it back).
      const target = round % 2 === 0 ? 1 : 0;
      const job = await mover.startMove(part.id, target);
      const t1 = performance.now();
      const done = await mover.runJob(job.id);
      const total = (performance.now() - t1) / 1000;
      if (done.state !== 'done') throw new Error(`bench move ended ${done.state}: ${done.error ?? done.reason}`);
      const d = await mover.jobDetail(job.id);
      const at = (s: string) => d.events.find((e) => e.toState === s)!.at.getTime();
      const copySecs = (at('catching_up') - at('copying')) / 1000;
      rows.push({ method: 'move: copy phase', rows: d.rowsCopied, bytes: d.bytesCopied, seconds: copySecs, rowsPerSec: d.rowsCopied / copySecs, mbPerSec: d.bytesCopied / copySecs / 1e6 });
      rows.push({ method: 'move: whole job', rows: d.rowsCopied, bytes: d.bytesCopied, seconds: total, rowsPerSec: d.rowsCopied / total, mbPerSec: d.bytesCopied / total / 1e6 });
      if (d.cutoverPauseMs !== null) cutoverPauses.push(d.cutoverPauseMs);
    }
    await mover.close();
    await catalog.close();
    await a.end();
    await b.end();
    const best = (m: string) => Math.max(...rows.filter((r) => r.method === m).map((r) => r.rowsPerSec));
    const ratio = best('move: copy phase') / best('COPY pipe');
    const ratioJob = best('move: whole job') / best('COPY pipe');
    process.stdout.write(`rows in the partition: ${n}\n`);
    process.stdout.write(`${'method'.padEnd(18)} ${'rows'.padStart(8)} ${'MB'.padStart(7)} ${'s'.padStart(6)} ${'rows/s'.padStart(9)} ${'MB/s'.padStart(6)}\n`);
    for (const r of rows) {
      process.stdout.write(`${r.method.padEnd(18)} ${String(r.rows).padStart(8)} ${(r.bytes / 1e6).toFixed(1).padStart(7)} ${r.seconds.toFixed(2).padStart(6)} ${Math.round(r.rowsPerSec).toString().padStart(9)} ${r.mbPerSec.toFixed(1).padStart(6)}\n`);
    }
    process.stdout.write(`copy phase / pipe: ${ratio.toFixed(2)}x (target ≥ 0.5x); whole job / pipe: ${ratioJob.toFixed(2)}x; cutover pause ms: ${cutoverPauses.map((x) => x.toFixed(1)).join(', ')}\n`);
    return { rowsInPartition: n, runs: rows, copyPhaseVsPipe: ratio, wholeJobVsPipe: ratioJob, cutoverPauseMs: cutoverPauses };
  } finally {
    await Promise.allSettled(servers.map(async (x) => {
      await x.s.stop();
      rmSync(x.dir, { recursive: true, force: true });
    }));
    cutoverPauses = [];
  }
}
