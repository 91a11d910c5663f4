// A duty cycle for background training, shared between threads: the fraction of wall time the
// training may work (1 = no pause). Whoever knows how busy the host is (the proxy) sets it; the
// training loop calls `pace()` between batches and sleeps so that it works at most that fraction.
//
// Why not just a low CPU priority: measured on the 2-core bench box, a SCHED_IDLE process that
// only streams through memory still raised the proxy's p99 by 30-40 % (caches and memory bandwidth
// are shared, whatever the scheduler says); a SCHED_IDLE spinner that touches no memory, by 3-5 %.
// Only working less while the proxy is busy keeps training out of its latency.

/** Lowest duty ever asked for: bounds how much longer a paced run takes (1 / MIN_DUTY). */
export const MIN_DUTY = 0.1;

const SCALE = 1000;

export class DutyCycle {
  readonly buffer: SharedArrayBuffer;
  private readonly cells: Int32Array;

  /** A new shared cell at duty 1, or a view of one made by another thread. */
  constructor(shared?: SharedArrayBuffer) {
    this.buffer = shared ?? new SharedArrayBuffer(8);
    this.cells = new Int32Array(this.buffer);
    if (!shared) Atomics.store(this.cells, 0, SCALE);
  }

  set(duty: number): void {
    const d = Number.isFinite(duty) ? Math.min(1, Math.max(MIN_DUTY, duty)) : 1;
    Atomics.store(this.cells, 0, Math.round(d * SCALE));
  }

  get(): number {
    return Atomics.load(this.cells, 0) / SCALE;
  }

  /** Total milliseconds the paced loop has slept: deadlines count work, not pauses. */
  pausedMs(): number {
    return Atomics.load(this.cells, 1);
  }

  addPaused(ms: number): void {
    Atomics.add(this.cells, 1, Math.round(ms));
  }
}

/**
 * Returns `pace()`: after each slice of work (≥ sliceMs), sleeps work × (1 − d) / d so the loop
 * works a fraction d of the time. The sleep is a timer, so the thread's event loop stays live.
 */
export function pacer(duty: DutyCycle, sliceMs = 25, now: () => number = () => performance.now()): () => Promise<void> {
  let sliceStart = now();
  return async () => {
    const worked = now() - sliceStart;
    if (worked < sliceMs) return;
    const d = duty.get();
    if (d < 1) {
      const sleep = Math.min(5_000, (worked * (1 - d)) / d);
      const t0 = now();
      await new Promise((r) => setTimeout(r, sleep));
      duty.addPaused(now() - t0);
    }
    sliceStart = now();
  };
}

/**
 * The duty for a given proxy event-loop utilisation (0..1): full speed while the proxy is mostly
 * idle, MIN_DUTY when it is busy, linear in between.
 */
export function dutyForUtilization(elu: number, idleBelow = 0.2, busyAbove = 0.5): number {
  if (!Number.isFinite(elu) || elu <= idleBelow) return 1;
  if (elu >= busyAbove) return MIN_DUTY;
  return 1 - ((elu - idleBelow) / (busyAbove - idleBelow)) * (1 - MIN_DUTY);
}
