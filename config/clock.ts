// The time the autopilot and the access recorder see: the wall clock in production, a compressed one in tests.
//
// A day of diurnal load cannot be replayed in real time by a test, so everything that decides on
// *simulated* time (recorder buckets, the autopilot's "now", forecast steps, plan schedules,
// cooldowns) reads this clock, while everything that protects data or processes (heartbeats,
// leases, mover timeouts, cutover budgets, pool timeouts) keeps the real wall clock. `scale` is
// simulated milliseconds per real millisecond: a recorder flushing every `ms` real milliseconds
// covers `ms × scale` simulated ones.

export interface Clock {
  /** Simulated time, ms since the epoch. */
  now(): number;
  /** Simulated ms per real ms (1 for the wall clock). */
  readonly scale: number;
}

export const wallClock: Clock = { now: () => Date.now(), scale: 1 };

export interface CompressedClockOptions {
  /** Simulated time at the real instant `realStartMs`. */
  simStartMs: number;
  /** Simulated ms per real ms, > 0 (900 = one real second is 15 simulated minutes). */
  scale: number;
  realStartMs?: number;
  /** The real clock (tests of the mapping inject one). */
  realNow?: () => number;
}

/** Simulated time = simStart + (real − realStart) × scale; both directions, for reports. */
export class CompressedClock implements Clock {
  readonly scale: number;
  readonly simStartMs: number;
  readonly realStartMs: number;
  private readonly realNow: () => number;

  constructor(opts: CompressedClockOptions) {
    if (!(opts.scale > 0) || !Number.isFinite(opts.scale)) throw new RangeError(`clock scale must be a positive number, got ${opts.scale}`);
    this.scale = opts.scale;
    this.simStartMs = opts.simStartMs;
    this.realNow = opts.realNow ?? Date.now;
    this.realStartMs = opts.realStartMs ?? this.realNow();
  }

  now(): number {
    return this.toSim(this.realNow());
  }

  toSim(realMs: number): number {
    return Math.round(this.simStartMs + (realMs - this.realStartMs) * this.scale);
  }

  toReal(simMs: number): number {
    return this.realStartMs + (simMs - this.simStartMs) / this.scale;
  }

  /** Real milliseconds until the simulated instant `simMs` (negative when it has passed). */
  realUntil(simMs: number): number {
    return this.toReal(simMs) - this.realNow();
  }
}
