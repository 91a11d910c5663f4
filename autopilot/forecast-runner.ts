// Runs forecastMany off the proxy's event loop, one run per child process or worker thread, always
// ended (exit or terminate) when the run settles, times out or is aborted.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DutyCycle, MIN_DUTY, type PredictResult } from '../predictor/index.js';
import type { DutyMessage } from './forecast-child.js';
import { AutopilotError } from './errors.js';
import type { ForecastJob, ForecastReply } from './forecast-worker.js';

/** Whole-run deadline: the LSTM has its own (shorter) timeout inside. */
export const FORECAST_TIMEOUT_MS = 300_000;

export type ForecastPlace = 'process' | 'thread';

/** A forecast and where it ran ("a child process at SCHED_IDLE, nice 19"). */
export type ForecastRun = PredictResult & { ranAt?: string };

/**
 * Runs a forecast in a child process or a worker thread. With `duty`, the LSTM training is paced:
 * every DUTY_POLL_MS the runner asks `duty()` for the fraction of time the training may work now
 * (the autopilot answers from the proxy's event-loop utilisation), and the deadline stretches by
 * 1 / MIN_DUTY, since a paced run may take that much longer.
 */
export function forecastOffLoop(place: ForecastPlace, job: ForecastJob, timeoutMs = FORECAST_TIMEOUT_MS, signal?: AbortSignal, duty?: () => number): Promise<ForecastRun> {
  const deadline = duty ? timeoutMs / MIN_DUTY : timeoutMs;
  return place === 'process' ? forecastInProcess(job, deadline, signal, duty) : forecastInWorker(job, deadline, signal, duty);
}

export const DUTY_POLL_MS = 250;

/** Polls `duty()` and hands changes to `apply` until the returned stop function is called. */
function pollDuty(duty: (() => number) | undefined, apply: (d: number) => void): () => void {
  if (!duty) return () => {};
  let last = NaN;
  const tick = (): void => {
    const d = Math.round(duty() * 100) / 100;
    if (d !== last) apply(d);
    last = d;
  };
  tick();
  const timer = setInterval(tick, DUTY_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Settles a run once: clears the timer and the abort listener, ends the runner, resolves or rejects. */
function runOnce(timeoutMs: number, signal: AbortSignal | undefined, end: () => void, what: string,
  resolve: (r: ForecastRun) => void, reject: (e: Error) => void): { finish: (err?: Error, res?: ForecastRun) => void; onReply: (m: ForecastReply) => void } {
  let settled = false;
  const onAbort = (): void => finish(new AutopilotError('FORECAST_ABORTED', 'forecast stopped: the proxy is shutting down'));
  const finish = (err?: Error, res?: ForecastRun): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    // The signal lives as long as the autopilot: a listener left behind per run would pile up.
    signal?.removeEventListener('abort', onAbort);
    end();
    if (err) reject(err); else resolve(res!);
  };
  const timer = setTimeout(() => finish(new AutopilotError('FORECAST_TIMEOUT', `forecast ${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  signal?.addEventListener('abort', onAbort, { once: true });
  // Aborted before the run got here (e.g. while the launcher was probed): stop at once.
  if (signal?.aborted) onAbort();
  const onReply = (m: ForecastReply): void => (m.ok ? finish(undefined, m.ranAt ? { ...m.result, ranAt: m.ranAt } : m.result) : finish(new AutopilotError('FORECAST_FAILED', `forecast failed: ${m.error}`)));
  return { finish, onReply };
}

export function forecastInWorker(job: ForecastJob, timeoutMs = FORECAST_TIMEOUT_MS, signal?: AbortSignal, duty?: () => number): Promise<ForecastRun> {
  return new Promise((resolve, reject) => {
    const shared = duty ? new DutyCycle() : undefined;
    const worker = new Worker(new URL('./forecast-worker.js', import.meta.url), { workerData: shared ? { ...job, dutyBuffer: shared.buffer } : job });
    const stopPoll = pollDuty(duty, (d) => shared!.set(d));
    const { finish, onReply } = runOnce(timeoutMs, signal, () => { stopPoll(); void worker.terminate(); }, 'worker', resolve, reject);
    worker.once('message', onReply);
    worker.once('error', (e) => finish(new AutopilotError('FORECAST_FAILED', `forecast worker crashed: ${e.message}`)));
    worker.once('exit', (code) => finish(new AutopilotError('FORECAST_FAILED', `forecast worker exited with code ${code}`)));
  });
}

export interface Launcher {
  /** Command and arguments put before `node script` ([] = run node directly). */
  prefix: string[];
  how: string;
}

let launcher: Promise<Launcher> | undefined;

/**
 * How to start a low-priority child: `chrt --idle 0` (SCHED_IDLE: runs only on CPU nothing else
 * wants) when util-linux's chrt works here, else `nice -n 19`, else plainly. Probed once, with
 * child processes run asynchronously: the proxy's event loop never waits for the probe.
 */
export function lowPriorityLauncher(): Promise<Launcher> {
  const works = (prefix: string[]): Promise<boolean> =>
    new Promise((resolve) => execFile(prefix[0]!, [...prefix.slice(1), 'true'], { timeout: 5000 }, (err) => resolve(err === null)));
  launcher ??= (async (): Promise<Launcher> => {
    if (process.platform === 'linux' && (await works(['chrt', '--idle', '0']))) return { prefix: ['chrt', '--idle', '0'], how: 'SCHED_IDLE' };
    if (process.platform !== 'win32' && (await works(['nice', '-n', '19']))) return { prefix: ['nice', '-n', '19'], how: 'nice 19' };
    return { prefix: [], how: 'normal priority' };
  })();
  return launcher;
}

export async function forecastInProcess(job: ForecastJob, timeoutMs = FORECAST_TIMEOUT_MS, signal?: AbortSignal, duty?: () => number): Promise<ForecastRun> {
  const prefix = job.priority !== 'normal' ? (await lowPriorityLauncher()).prefix : [];
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(new URL('./forecast-child.js', import.meta.url));
    const [cmd, ...args] = [...prefix, process.execPath, script];
    let child: ChildProcess;
    try {
      child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' });
    } catch (err) {
      reject(new AutopilotError('FORECAST_FAILED', `could not start the forecast process: ${(err as Error).message}`));
      return;
    }
    // The last lines of stderr name the cause when the child dies without a reply.
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000); });
    let stopPoll = (): void => {};
    const { finish, onReply } = runOnce(timeoutMs, signal, () => {
      stopPoll();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, 'process', resolve, reject);
    child.once('message', (m: ForecastReply) => onReply(m));
    child.once('error', (e) => finish(new AutopilotError('FORECAST_FAILED', `forecast process failed: ${e.message}`)));
    // 'close', not 'exit': it comes after the IPC channel is drained, so a reply is never lost to it.
    child.once('close', (code, sig) => finish(new AutopilotError('FORECAST_FAILED',
      `forecast process exited (${sig ?? `code ${code}`}) before it answered${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`)));
    child.send(job, (err) => { if (err) finish(new AutopilotError('FORECAST_FAILED', `could not hand the job to the forecast process: ${err.message}`)); });
    stopPoll = pollDuty(duty, (d) => {
      if (child.connected) child.send({ duty: d } satisfies DutyMessage, () => {});
    });
  });
}
