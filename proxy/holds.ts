// Hash ranges whose statements are held (buffered, not failed) while the mover cuts them over.
import { partsToHash, type HashParts } from '../config/hash.js';

/** Same shape as the mover's HeldRange (the composition root passes those through). */
export interface HoldRange {
  jobId: number;
  keyspaceId: number;
  lo: bigint;
  hi: bigint;
}

/**
 * Who placed a hold: this process's mover ('local'), or another proxy's mover through the catalog
 * ('remote', proxy/cluster/cluster-holds.ts). The two are kept apart, so ending one (a remote hold
 * reaching its deadline) never ends the other for the same job.
 */
export type HoldOwner = 'local' | 'remote';

/**
 * A hold in place. `seq` orders it against what transactions touched (RangeHolds.now when they
 * noted it): a touch noted at n < seq came before the hold. `source` is the shard that owned the
 * range when the hold was placed (the shard the mover fences), null when the routing did not say.
 */
export interface ActiveHold extends HoldRange {
  owner: HoldOwner;
  seq: number;
  source: number | null;
}

export class RangeHolds {
  private holds: ActiveHold[] = [];
  private waiters: (() => void)[] = [];
  private clock = 0;
  /** Fast check for the hot path: false almost always. */
  active = false;

  /** `sourceOf`: the shard owning the hash `lo` of the key space in the routing served now. */
  constructor(private readonly sourceOf: (keyspaceId: number, lo: bigint) => number | null = () => null) {}

  /** The sequence a touch noted now gets: holds placed from now on have a greater seq. */
  get now(): number {
    return this.clock;
  }

  hold(r: HoldRange, owner: HoldOwner = 'local'): void {
    if (!this.holds.some((h) => h.jobId === r.jobId && h.owner === owner)) {
      this.holds.push({ jobId: r.jobId, keyspaceId: r.keyspaceId, lo: r.lo, hi: r.hi, owner, seq: ++this.clock, source: this.sourceFor(r.keyspaceId, r.lo) });
    }
    this.active = true;
  }

  release(r: { jobId: number }, owner: HoldOwner = 'local'): void {
    this.holds = this.holds.filter((h) => h.jobId !== r.jobId || h.owner !== owner);
    this.active = this.holds.length > 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The shard owning hash `lo` of the key space in the routing served now, or null when it does not say. */
  sourceFor(keyspaceId: number, lo: bigint): number | null {
    try {
      return this.sourceOf(keyspaceId, lo);
    } catch {
      return null;
    }
  }

  /** Is this key (by its hash) in a held range? */
  holdsHash(keyspaceId: number, h: HashParts): boolean {
    if (!this.active) return false;
    const hash = partsToHash(h);
    return this.holds.some((r) => r.keyspaceId === keyspaceId && hash >= r.lo && hash < r.hi);
  }

  holdsKeyspace(keyspaceId: number): boolean {
    return this.active && this.holds.some((r) => r.keyspaceId === keyspaceId);
  }

  list(): readonly ActiveHold[] {
    return this.holds;
  }

  /** The holds placed for a job (by this process's mover, another's, or both). */
  forJob(jobId: number): ActiveHold[] {
    return this.holds.filter((h) => h.jobId === jobId);
  }

  /** Call `fn` once at the next release (of any hold). */
  onRelease(fn: () => void): void {
    this.waiters.push(fn);
  }
}
