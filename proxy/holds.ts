// Hash ranges whose statements are held (buffered, not failed) while the mover cuts them over.
import type { HashParts } from '../config/hash.js';

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

export class RangeHolds {
  private holds: (HoldRange & { owner: HoldOwner })[] = [];
  private waiters: (() => void)[] = [];
  /** Fast check for the hot path: false almost always. */
  active = false;

  hold(r: HoldRange, owner: HoldOwner = 'local'): void {
    if (!this.holds.some((h) => h.jobId === r.jobId && h.owner === owner)) this.holds.push({ jobId: r.jobId, keyspaceId: r.keyspaceId, lo: r.lo, hi: r.hi, owner });
    this.active = true;
  }

  release(r: { jobId: number }, owner: HoldOwner = 'local'): void {
    this.holds = this.holds.filter((h) => h.jobId !== r.jobId || h.owner !== owner);
    this.active = this.holds.length > 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Is this key (by its hash) in a held range? */
  holdsHash(keyspaceId: number, h: HashParts): boolean {
    if (!this.active) return false;
    const hash = (BigInt(h.hi) << 32n) | BigInt(h.lo >>> 0);
    return this.holds.some((r) => r.keyspaceId === keyspaceId && hash >= r.lo && hash < r.hi);
  }

  holdsKeyspace(keyspaceId: number): boolean {
    return this.active && this.holds.some((r) => r.keyspaceId === keyspaceId);
  }

  list(): readonly HoldRange[] {
    return this.holds;
  }

  /** Call `fn` once at the next release (of any hold). */
  onRelease(fn: () => void): void {
    this.waiters.push(fn);
  }
}
