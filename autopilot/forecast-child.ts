// Child-process entry: receives one ForecastJob over IPC, runs forecastMany, replies, exits.
// The runner starts this process under SCHED_IDLE (or nice 19), which every thread of it inherits:
// the LSTM's worker, and V8's GC and compiler threads, that a worker thread would share with the
// proxy. Later messages `{ duty }` pace the LSTM training while the proxy is busy.
import { DutyCycle, forecastMany } from '../predictor/index.js';
import { currentSchedule, type ForecastJob, type ForecastReply } from './forecast-worker.js';

/** What the runner sends after the job: the duty cycle the training may use now. */
export interface DutyMessage {
  duty: number;
}

function reply(m: ForecastReply): void {
  // Exit once the reply is written: the parent reads it before it sees the process close.
  process.send!(m, undefined, undefined, () => process.exit(0));
}

if (process.send) {
  const duty = new DutyCycle();
  let started = false;
  // The parent going away (proxy killed) closes the channel: nothing is left to answer to.
  process.once('disconnect', () => process.exit(0));
  process.on('message', (m: ForecastJob | DutyMessage) => {
    if ('duty' in m) {
      duty.set(m.duty);
      return;
    }
    if (started) return;
    started = true;
    forecastMany(m.inputs, { ...m.opts, duty }).then(
      (result) => reply({ ok: true, result, ranAt: `a child process at ${currentSchedule('/proc/self/stat')}` }),
      (err: unknown) => reply({ ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}
