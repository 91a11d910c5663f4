// What the mover benchmarks observe of a job: the runner's named steps (MoverHooks.onStep) with
// their wall-clock times, and the RoutingControl calls (hold → release) as the proxy got them.
import type { HeldRange, JobDetail, MoverHooks, RoutingControl } from '../../mover/index.js';
import { nowMs } from './stats.js';

/** Step times per job: step name → first and last time it fired (abs ms). */
export class StepClock {
  private readonly steps = new Map<number, { step: string; at: number }[]>();

  readonly hooks: MoverHooks = {
    onStep: (jobId, step) => {
      let l = this.steps.get(jobId);
      if (!l) this.steps.set(jobId, (l = []));
      l.push({ step, at: nowMs() });
    },
  };

  list(jobId: number): { step: string; at: number }[] {
    return this.steps.get(jobId) ?? [];
  }

  first(jobId: number, step: string): number | null {
    return this.list(jobId).find((s) => s.step === step)?.at ?? null;
  }

  last(jobId: number, step: string): number | null {
    const l = this.list(jobId).filter((s) => s.step === step);
    return l.length ? l[l.length - 1]!.at : null;
  }

  count(jobId: number, step: string): number {
    return this.list(jobId).filter((s) => s.step === step).length;
  }
}

export interface HoldWindow {
  jobId: number;
  /** holdRange called (abs ms). */
  holdAt: number;
  /** release resolved (abs ms); null while held. */
  releasedAt: number | null;
}

/** Passes every call through to the proxy's RoutingControl and notes when each hold began and ended. */
export class TimedRoutingControl implements RoutingControl {
  readonly windows: HoldWindow[] = [];

  constructor(private readonly inner: RoutingControl) {}

  async beforeCutover(): Promise<void> {
    await this.inner.beforeCutover?.();
  }

  async holdRange(range: HeldRange): Promise<void> {
    this.windows.push({ jobId: range.jobId, holdAt: nowMs(), releasedAt: null });
    await this.inner.holdRange(range);
  }

  waitInFlight(range: HeldRange, timeoutMs: number): Promise<void> {
    return this.inner.waitInFlight(range, timeoutMs);
  }

  installVersion(version: number, timeoutMs: number): Promise<void> {
    return this.inner.installVersion(version, timeoutMs);
  }

  async release(range: HeldRange): Promise<void> {
    await this.inner.release(range);
    const open = this.windows.filter((w) => w.jobId === range.jobId && w.releasedAt === null);
    for (const w of open) w.releasedAt = nowMs();
  }

  forJob(jobId: number): HoldWindow[] {
    return this.windows.filter((w) => w.jobId === jobId);
  }
}

export interface PhaseBreakdown {
  /** runJob called → the runner holds the job (lock, load). */
  start: number;
  preparing: number;
  copying: number;
  /** catching_up: drain passes + verification (verifyMs of it). */
  catchingUp: number;
  verifyMs: number | null;
  /** state:cutover → state:cleanup: the cutover attempts, incl. their catalog writes. */
  cutover: number;
  /** Waiting out graceMs after the switch (not throughput time). */
  grace: number;
  /** Deleting the range's rows from the source. */
  cleanupDelete: number;
  /** Dropping triggers, the final transition. */
  finish: number;
  total: number;
}

/**
 * Per-phase wall time (ms) of one finished job from its step times; `verifyMs` from the catalog's
 * "verification passed" event (catalog clock, same machine). Grace = the part of cleanup before
 * switchedAt + graceMs.
 */
export function phases(clock: StepClock, d: JobDetail, t0: number, t1: number, graceMs: number, switchedAt: number | null): PhaseBreakdown {
  const id = d.id;
  const at = (s: string) => clock.first(id, s);
  const planned = at('state:planned') ?? t0;
  const preparing = at('state:preparing') ?? planned;
  const copying = at('state:copying') ?? preparing;
  const catching = at('state:catching_up') ?? copying;
  const cutover = clock.last(id, 'state:cutover') !== null ? clock.first(id, 'state:cutover')! : catching;
  const cleanup = at('state:cleanup') ?? cutover;
  const deleted = at('cleanup:rows-deleted') ?? cleanup;
  const graceEnd = switchedAt === null ? cleanup : Math.min(deleted, Math.max(cleanup, switchedAt + graceMs));
  const verified = d.events.find((e) => e.fromState === 'catching_up' && e.toState === 'catching_up' && /^verification/.test(e.detail));
  const verifyMs = verified ? Math.max(0, verified.at.getTime() - catching) : null;
  return {
    start: preparing - t0, preparing: copying - preparing, copying: catching - copying, catchingUp: cutover - catching, verifyMs,
    cutover: cleanup - cutover, grace: graceEnd - cleanup, cleanupDelete: deleted - graceEnd, finish: t1 - deleted, total: t1 - t0,
  };
}
