// The mover's error type and its SQLSTATEs (the fence's own SQLSTATE lives here too).
import { PgtideError, type PgtideErrorOptions } from '../config/errors.js';

/**
 * SQLSTATE the source shard raises for a write to a range that has moved away (class P0 is
 * PL/pgSQL's; 'PT001' is ours). A proxy that sees it reloads the routing table and retries.
 */
export const FENCE_SQLSTATE = 'PT001';

/** Every failure the mover reports on purpose; `code` is stable, `sqlstate` is what admin SQL shows. */
export class MoverError extends PgtideError {
  constructor(code: string, message: string, opts: PgtideErrorOptions = {}) {
    super(code, message, opts);
  }
}

export const unknownPartition = (id: number) => new MoverError('UNKNOWN_PARTITION', `partition ${id} does not exist`, { sqlstate: '42704' });
export const unknownJob = (id: number) => new MoverError('UNKNOWN_JOB', `job ${id} does not exist`, { sqlstate: '42704' });
export const unknownShard = (id: number) => new MoverError('UNKNOWN_SHARD', `shard ${id} does not exist`, { sqlstate: '42704' });
export const partitionBusy = (id: number, jobId: number) =>
  new MoverError('PARTITION_BUSY', `partition ${id} is already in job ${jobId}`, { sqlstate: '55006', hint: `wait for job ${jobId} or CANCEL JOB ${jobId}` });

/** Errors that mean "a server is unreachable right now": the job waits and retries, it does not fail. */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300' || code === '40001' || code === '40P01' || code === '55P03') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'NOT_ACKNOWLEDGED'].includes(code)) return true;
  const m = String(e?.message ?? '');
  return /Connection terminated|connection timeout|not queryable|ECONNREFUSED|ECONNRESET|timeout exceeded when trying to connect/i.test(m);
}

/** Said when live proxies did not acknowledge the routing version a job needs them to route by. */
export const WAITING_FOR_PROXIES = 'waiting for every live proxy to learn the move';

/** The reason a job rests in paused with when a server stayed unreachable; the leader resumes it once they answer. */
export const WAITING_FOR_SERVER = 'waiting for a server';

export function isWaitingForServer(reason: string | null | undefined): boolean {
  return reason?.startsWith(WAITING_FOR_SERVER) === true;
}
