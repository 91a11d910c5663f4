// Kill/resume: the job runs in a child process that SIGKILLs itself at a chosen step; an in-process runner resumes it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { JobState, Mover, type MoverSettings } from '../../mover/index.js';
import type { TestCluster } from '../helpers/cluster.js';
import { checkInvariants, Ledger, preload, rangeCount, RoutingView, startWriters, startMoverTestBed } from './workload.js';

const CLI = fileURLToPath(new URL('../../mover/cli.js', import.meta.url));
const SETTINGS: Partial<MoverSettings> = { chunkRows: 150, graceMs: 200, cutoverBudgetMs: 1500, retryDelayMs: 100, drainBatch: 500, lagBound: 50, verifyChunkRows: 300, latencyFloorMs: 50, maxDelayMs: 100 };
/** Where the child may die; one is drawn at random per run (printed), plus the fence window every time. */
const KILL_POINTS = ['state:preparing', 'chunk#2', 'state:catching_up', 'cutover:holdTraffic', 'cutover:drainFinalChanges', 'cutover:switchRouting', 'cleanup-chunk'];

function runChild(catalogUrl: string, jobId: number, dieAt: string): Promise<NodeJS.Signals | string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'run', catalogUrl, String(jobId), JSON.stringify(SETTINGS)], {
      env: { ...process.env, PGTIDE_MOVER_DIE_AT: dieAt }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    let out = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal ? resolve(signal) : code === 0 ? resolve(`exit 0: ${out.trim()} ${err.slice(-600)}`) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe('mover kill/resume', () => {
  let cluster: TestCluster;
  let shards: pg.Client[];
  let view: RoutingView;
  const ledger = new Ledger();

  before(async () => {
    ({ cluster, shards, view } = await startMoverTestBed());
    await preload(shards, view, ledger, 100000, 3000);
  });

  after(async () => {
    view?.stop();
    await cluster?.stop();
  });

  const random = process.env.PGTIDE_MOVER_KILL_POINT ?? KILL_POINTS[Math.floor(Math.random() * KILL_POINTS.length)]!;
  for (const [i, dieAt] of [[0, random], [1, 'cutover:fenceSource']] as const) {
    test(`SIGKILL at ${dieAt}, resume in-process: nothing lost, every key once on its owner`, async () => {
      const catalog = cluster.proxy.catalog;
      const info = view.index.tableInfo('accounts')!;
      // Move the first partition there and back: 0 → 1, then 1 → 0.
      const [from, to] = i === 0 ? [0, 1] : [1, 0];
      const part = (await catalog.loadRoutingTable()).partitions.filter((p) => p.keyspaceId === info.keyspaceId).sort((a, b) => (a.lo < b.lo ? -1 : 1))[0]!;
      assert.equal(part.shardId, from);
      const writers = startWriters(cluster.shards.map((s) => s.url('app')), view, ledger, { writers: 3, keys: 300 });
      const mover = new Mover({ catalog, settings: SETTINGS });
      try {
        const job = await mover.startMove(part.id, to);
        const how = await runChild(cluster.config.catalog, job.id, dieAt);
        assert.equal(how, 'SIGKILL', `the child died at ${dieAt}`);
        const killedIn = (await mover.jobDetail(job.id)).state;
        const done = await mover.runJob(job.id);
        const stats = await writers.stop();
        assert.equal(done.state, JobState.Done, `killed in ${killedIn}, resumed to ${done.state}: ${done.error ?? done.reason ?? ''}`);
        assert.deepEqual(stats.errors, []);
        await checkInvariants(shards, catalog, ledger);
        assert.equal(await rangeCount(shards[from]!, 'accounts', 'id', part.lo, part.hi), 0);
        assert.equal(await rangeCount(shards[from]!, 'items', 'account_id', part.lo, part.hi), 0);
        const events = (await mover.jobDetail(job.id)).events.map((e) => e.toState);
        assert.equal(events.at(-1), 'done');
      } finally {
        await writers.stop().catch(() => {});
        await mover.close();
      }
    });
  }
});
