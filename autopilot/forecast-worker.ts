// Worker thread entry: runs the whole forecast (statistical models, and the LSTM in its own nested worker) off the proxy's event loop.
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { forecastMany, type PredictOptions, type PredictResult, type SeriesInput } from '../predictor/index.js';

export interface ForecastJob {
  inputs: SeriesInput[];
  opts: Omit<PredictOptions, 'now'>;
  /** 'low' (default) lowers this thread's priority; 'normal' leaves it alone. */
  priority?: 'low' | 'normal';
}

export type ForecastReply = { ok: true; result: PredictResult } | { ok: false; error: string };

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
  forecastMany(job.inputs, job.opts).then(
    (result) => port.postMessage({ ok: true, result } satisfies ForecastReply),
    (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) } satisfies ForecastReply),
  );
}
