// MOVE PARTITION p TO SHARD n, SHOW JOBS, SHOW JOB n, PAUSE | RESUME | CANCEL JOB n: live redistribution jobs.
import { AdminError, type AdminContext } from '../admin-session.js';
import { table, type AdminCommand } from '../result.js';

function jobs(ctx: AdminContext) {
  const j = ctx.backend.jobs;
  if (!j) throw new AdminError('NO_MOVER', 'live moves are not available in this process', { sqlstate: '0A000' });
  ctx.backend.member.assertCatalogReachable();
  return j;
}

function positive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new AdminError('BAD_ARGUMENT', `${what} must be a non-negative integer, got ${text}`, { sqlstate: '22023' });
  return n;
}

export const movePartition: AdminCommand = {
  syntax: 'MOVE PARTITION p TO SHARD n',
  description: 'move a partition to another shard live (copy, catch up, verify, fenced cutover)',
  pattern: /^move\s+partition\s+(\S+)\s+to\s+shard\s+(\S+)$/i,
  async run(ctx, m) {
    const job = await jobs(ctx).move(positive(m[1]!, 'partition id'), positive(m[2]!, 'shard id'));
    return { columns: ['job', 'state'], rows: [[job.id, job.state]], tag: 'MOVE PARTITION', notices: [`job ${job.id} planned; SHOW JOB ${job.id} follows it`] };
  },
};

export const showJobs: AdminCommand = {
  syntax: 'SHOW JOBS',
  description: 'redistribution jobs: partition, source, target, state, rows copied',
  pattern: /^show\s+jobs$/i,
  async run(ctx) {
    const r = await jobs(ctx).list();
    return table(r.columns, r.rows);
  },
};

export const showJob: AdminCommand = {
  syntax: 'SHOW JOB n',
  description: 'one job: state, rows and bytes copied, lag, ETA, verification, cutover pause, events',
  pattern: /^show\s+job\s+(\S+)$/i,
  async run(ctx, m) {
    const r = await jobs(ctx).detail(positive(m[1]!, 'job id'));
    return table(r.columns, r.rows);
  },
};

export const jobControl: AdminCommand = {
  syntax: 'PAUSE JOB n | RESUME JOB n | CANCEL JOB n',
  description: 'pause, resume, or cancel (roll back to the source) a job',
  pattern: /^(pause|resume|cancel)\s+job\s+(\S+)$/i,
  async run(ctx, m) {
    const verb = m[1]!.toLowerCase() as 'pause' | 'resume' | 'cancel';
    const job = await jobs(ctx)[verb](positive(m[2]!, 'job id'));
    return { columns: ['job', 'state'], rows: [[job.id, job.state]], tag: `${verb.toUpperCase()} JOB` };
  },
};
