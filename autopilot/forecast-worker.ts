// Worker thread entry: runs the whole forecast (statistical models, and the LSTM in its own nested worker) off the proxy's event loop.
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { DutyCycle, forecastMany, type PredictOptions, type PredictResult, type SeriesInput } from '../predictor/index.js';

export interface ForecastJob {
  inputs: SeriesInput[];
  opts: Omit<PredictOptions, 'now'>;
  /** 'low' (default) lowers this thread's priority; 'normal' leaves it alone. */
  priority?: 'low' | 'normal';
  /** Thread runs only: the duty cycle shared with the runner (a child process gets it by message). */
  dutyBuffer?: SharedArrayBuffer;
}

export type ForecastReply = { ok: true; result: PredictResult; ranAt?: string } | { ok: false; error: string };

const POLICIES: Record<string, string> = { 0: 'SCHED_OTHER', 3: 'SCHED_BATCH', 5: 'SCHED_IDLE' };

/**
 * The scheduling this thread really ran at, from /proc (Linux), e.g. "SCHED_IDLE, nice 19":
 * what the forecast run reports, so a box where lowering the priority failed shows it.
 */
export function currentSchedule(statPath = '/proc/thread-self/stat'): string {
  try {
    const stat = readFileSync(statPath, 'utf8');
    // Fields after the command name, which may hold spaces: field 3 is rest[0].
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const policy = POLICIES[rest[38] ?? ''] ?? `policy ${rest[38]}`;
    return `${policy}, nice ${rest[16]}`;
  } catch {
    return 'unknown priority (no /proc)';
  }
}

/** Nice value of the forecast thread (and of the LSTM thread it starts, which inherits it). */
export const WORKER_NICE = 19;

/**
 * On Linux a thread has its own nice value: lower this thread's priority so that, when the two
 * cores are busy, the scheduler gives the proxy, Postgres and the clients the CPU first and the
 * forecast only the idle time: SCHED_IDLE when `chrt` (util-linux) is there, else nice 19. The
 * LSTM thread this worker starts inherits both. Elsewhere (no /proc/thread-self) it runs at normal priority.
 */
function lowerPriority(): string {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return 'normal priority (no thread id)';
    setPriority(tid, WORKER_NICE);
    try {
      execFileSync('chrt', ['--idle', '-p', '0', String(tid)], { stdio: 'ignore', timeout: 2000 });
      return 'SCHED_IDLE';
    } catch {
      return `nice ${WORKER_NICE}`;
    }
  } catch (err) {
    return `normal priority (${(err as Error).message})`;
  }
}

if (parentPort) {
  const port = parentPort;
  const job = workerData as ForecastJob;
  if (job.priority !== 'normal') lowerPriority();
  forecastMany(job.inputs, { ...job.opts, ...(job.dutyBuffer ? { duty: new DutyCycle(job.dutyBuffer) } : {}) }).then(
    (result) => port.postMessage({ ok: true, result, ranAt: `a worker thread at ${currentSchedule()}` } satisfies ForecastReply),
    (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) } satisfies ForecastReply),
  );
}
