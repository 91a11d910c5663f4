// VERIFY PARTITION p: chunked checksums of one partition on demand, and stray rows of its range elsewhere.
//
// * A job is moving p and has finished copying (catching_up, cutover, or paused/failed there):
//   source vs target with the job's own verifyRange. Differing keys are repaired like the job
//   does only when no runner holds the job (paused, failed, not picked up yet): while one runs,
//   its drain and its own verification own the target's rows, so we only compare. The result is
//   stored on the job (SHOW JOB n: verify_on_demand, plus an event row); a repair or a failure
//   clears the job's own verification so it verifies again before it cuts over.
// * Otherwise: per table, rows and a checksum on the owner; a job that is still copying (or
//   cleaning up) is shown with the row count on its other side.
// * Every other shard that may hold data: rows of p's range there are strays, counted and
//   reported, never deleted (deleting is a decision for the DBA, who can see why they are there).
import type pg from 'pg';
import type { Range } from './backfill.js';
import type { Job } from './jobs.js';
import type { Mover } from './mover.js';
import type { MoveTable } from './shards.js';
import { quoteTable } from './sql.js';
import { JobState } from './states.js';
import { rangeCount, rangeFingerprint, verifyRange } from './verify.js';

export interface VerifyRow {
  table: string;
  shard: number;
  role: string;
  rows: number | null;
  checksum: string | null;
  result: string;
}

export interface PartitionVerification {
  partitionId: number;
  owner: number;
  jobId: number | null;
  /** Everything checked matched and no stray row was found. */
  ok: boolean;
  strayRows: number;
  rows: VerifyRow[];
  notes: string[];
}

const COMPARABLE = [JobState.CatchingUp, JobState.Cutover];

/** Has the job copied everything, so that source and target must match (up to in-flight keys)? */
function copyFinished(job: Job): boolean {
  if (COMPARABLE.includes(job.state)) return true;
  return (job.state === JobState.Paused || job.state === JobState.Failed) && job.pausedFrom !== null && COMPARABLE.includes(job.pausedFrom);
}

export async function verifyPartition(m: Mover, partitionId: number, opts: { chunkRows?: number } = {}): Promise<PartitionVerification> {
  const part = await m.partition(partitionId);
  const jobId = await m.store.activeJobFor(partitionId);
  const job = jobId === null ? null : await m.store.load(jobId);
  const chunkRows = opts.chunkRows ?? m.settings.verifyChunkRows;
  const range: Range = { lo: part.lo, hi: part.hi };
  const out: PartitionVerification = { partitionId, owner: part.shardId, jobId, ok: true, strayRows: 0, rows: [], notes: [] };
  await m.shards.ping(part.shardId);
  const tables = await m.keyspaceTables(part.keyspaceId, part.shardId);
  out.notes.push(`partition ${partitionId} [${part.lo}, ${part.hi}) of key space ${part.keyspaceId} on shard ${part.shardId}: ${tables.map((t) => t.name).join(', ') || 'no tables'}`);
  const exempt = new Set([part.shardId]);
  const owner = await m.shards.client(part.shardId);
  try {
    if (job && copyFinished(job)) {
      exempt.add(job.targetShard);
      await compareWithJob(m, job, owner, tables, chunkRows, out);
    } else {
      for (const t of tables) {
        const fp = await rangeFingerprint(owner, t, range, chunkRows);
        out.rows.push({ table: t.name, shard: part.shardId, role: 'owner', rows: fp.rows, checksum: fp.checksum, result: `${fp.chunks} chunk${fp.chunks === 1 ? '' : 's'} read` });
      }
      if (job) {
        // Copying: the target holds part of the range; cleanup: the old source still holds what it is deleting.
        const cleaning = job.state === JobState.Cleanup || (job.pausedFrom === JobState.Cleanup);
        const other = cleaning ? job.sourceShard : job.targetShard;
        exempt.add(other);
        await withShard(m, other, async (c) => {
          for (const t of tables) {
            const n = await rangeCount(c, t, range);
            out.rows.push({ table: t.name, shard: other, role: cleaning ? `old source (job ${job.id})` : `target (job ${job.id})`, rows: n, checksum: null,
              result: cleaning ? `being deleted by job ${job.id}'s cleanup` : `job ${job.id} is ${job.state}; source and target are compared once its copy has finished` });
          }
        }, (msg) => out.notes.push(`shard ${other} (job ${job.id}) is unreachable: ${msg}`));
      }
    }
  } finally {
    await owner.end().catch(() => {});
  }
  await countStrays(m, partitionId, tables, range, exempt, out);
  return out;
}

async function compareWithJob(m: Mover, job: Job, src: pg.Client, tables: MoveTable[], chunkRows: number, out: PartitionVerification): Promise<void> {
  // Holding the run lock means no runner is working on the job: then we may repair like it does.
  const lock = await m.store.tryLock(job.id);
  const dst = await m.shards.client(job.targetShard);
  try {
    const repair = lock !== null;
    const result = await verifyRange(src, dst, job.id, tables, { lo: job.lo, hi: job.hi }, { chunkRows, rounds: 3, repair });
    for (const t of result.tables) {
      let text: string;
      if (t.mismatchedChunks === 0) text = `${t.chunks} chunk${t.chunks === 1 ? '' : 's'} match on both sides`;
      else if (repair) text = `${t.mismatchedChunks} of ${t.chunks} chunks differed: ${t.repairedKeys} key${t.repairedKeys === 1 ? '' : 's'} repaired from the source, ${t.unresolvedKeys} still differ`;
      else text = `${t.mismatchedChunks} of ${t.chunks} chunks differ (${t.unresolvedKeys} keys not waiting in the changelog); not repaired: job ${job.id} is running and verifies before its cutover`;
      out.rows.push({ table: t.table, shard: job.sourceShard, role: `source → target ${job.targetShard} (job ${job.id})`, rows: t.rows, checksum: null, result: text });
    }
    if (!result.ok) out.ok = false;
    const repaired = result.tables.reduce((a, t) => a + t.repairedKeys, 0);
    const rows = result.tables.reduce((a, t) => a + t.rows, 0);
    const note = `VERIFY PARTITION ${job.partitionId}: ${rows} rows in ${result.tables.reduce((a, t) => a + t.chunks, 0)} chunks, `
      + `${result.tables.reduce((a, t) => a + t.mismatchedChunks, 0)} chunks differed, ${repaired} keys repaired, `
      + `${result.tables.reduce((a, t) => a + t.unresolvedKeys, 0)} unresolved${repair ? '' : ' (compare only: the job is running)'}`;
    out.notes.push(note);
    // A repair or a failure means the job's earlier verification no longer speaks for the target.
    const reverify = repair && (repaired > 0 || !result.ok);
    await m.store.patch(job.id, { progress: { onDemandVerification: { ...result, repaired: repair, note } }, ...(reverify ? { verification: null } : {}) });
    await m.store.note(job.id, job.state, note);
  } finally {
    await dst.end().catch(() => {});
    await lock?.release();
  }
}

async function countStrays(m: Mover, partitionId: number, tables: MoveTable[], range: Range, exempt: Set<number>, out: PartitionVerification): Promise<void> {
  const { rows: shards } = await m.catalog.pool.query<{ id: number }>(
    "SELECT id FROM pgtide.shards WHERE state IN ('active', 'draining', 'joining', 'down') ORDER BY id");
  for (const { id } of shards) {
    if (exempt.has(id)) continue;
    await withShard(m, id, async (c) => {
      for (const t of tables) {
        const exists = await c.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [quoteTable(t.name)]);
        if (!exists.rows[0]?.ok) {
          out.rows.push({ table: t.name, shard: id, role: 'not owner', rows: null, checksum: null, result: 'table missing on this shard' });
          continue;
        }
        const n = await rangeCount(c, t, range);
        out.strayRows += n;
        if (n > 0) out.ok = false;
        out.rows.push({ table: t.name, shard: id, role: 'not owner', rows: n, checksum: null,
          result: n === 0 ? 'no stray rows' : `STRAY: ${n} row${n === 1 ? '' : 's'} of partition ${partitionId}'s range on a shard that does not own it (reported, not deleted)` });
      }
    }, (msg) => {
      out.ok = false;
      out.rows.push({ table: '*', shard: id, role: 'not owner', rows: null, checksum: null, result: `unreachable, not checked: ${msg}` });
    });
  }
}

async function withShard(m: Mover, id: number, fn: (c: pg.Client) => Promise<void>, unreachable: (msg: string) => void): Promise<void> {
  let c: pg.Client;
  try {
    c = await m.shards.client(id);
  } catch (err) {
    unreachable((err as Error).message);
    return;
  }
  try {
    await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}
