// Adapts the mover's API to what the admin console shows (SHOW JOBS, SHOW JOB n, MOVE, PAUSE…).
import type { JobDetail, Mover } from '../mover/index.js';
import type { JobsBackend } from '../proxy/admin/admin-session.js';

type Cell = string | number | boolean | null;

export function moverAdmin(mover: Mover): JobsBackend {
  const brief = (j: { id: number; state: string }) => ({ id: j.id, state: j.state });
  return {
    move: async (p, shard) => brief(await mover.startMove(p, shard)),
    async split(p, at, moveTo) {
      const r = await mover.splitPartition(p, at, moveTo);
      return { version: r.version, left: r.left, right: r.right, at: r.at, ...(r.job ? { jobId: r.job.id } : {}) };
    },
    pause: async (id) => brief(await mover.pause(id)),
    resume: async (id) => brief(await mover.resume(id)),
    cancel: async (id) => brief(await mover.cancel(id)),
    async list() {
      const jobs = await mover.listJobs();
      return {
        columns: ['id', 'partition', 'source', 'target', 'state', 'requested', 'rows_copied', 'reason', 'updated_at'],
        rows: jobs.map((j): Cell[] => [j.id, j.partitionId, j.sourceShard, j.targetShard, j.state, j.requested, j.rowsCopied, j.reason, j.updatedAt.toISOString()]),
      };
    },
    async detail(id) {
      const d = await mover.jobDetail(id);
      const rows: Cell[][] = [
        ['id', d.id], ['state', d.state], ['partition', d.partitionId], ['range', `[${d.lo}, ${d.hi})`],
        ['source', d.sourceShard], ['target', d.targetShard], ['rows_copied', d.rowsCopied], ['bytes_copied', d.bytesCopied],
        ['estimated_rows', d.estimatedRows], ['lag', d.lag], ['eta_seconds', d.etaSeconds === null ? null : Math.round(d.etaSeconds)],
        ['throttle', d.throttle ? throttleText(d.throttle) : null],
        ['verification', d.verification ? JSON.stringify(d.verification) : null],
        ['verify_on_demand', d.onDemandVerification ? JSON.stringify(d.onDemandVerification) : null], ['cutover_pause_ms', d.cutoverPauseMs],
        ['cutover_attempts', d.cutoverAttempts], ['reason', d.reason], ['error', d.error],
      ];
      for (const e of d.events.slice(-20)) rows.push([`event ${e.at.toISOString()}`, `${e.fromState ?? '·'} → ${e.toState}${e.detail ? `: ${e.detail}` : ''}`]);
      return { columns: ['field', 'value'], rows };
    },
  };
}

/** The backfill throttle's state in one line: chunk size, pace, pauses, how often it backed off. */
function throttleText(t: NonNullable<JobDetail['throttle']>): string {
  const pace = t.bytesPerSec === undefined ? 'unpaced' : `paced at ${(t.bytesPerSec / 1e6).toFixed(2)} MB/s`;
  return `chunks of ${t.chunkRows} rows, ${pace}, ${Math.round(t.delayMs)} ms between chunks, ${t.throttledChunks} chunks throttled`;
}
