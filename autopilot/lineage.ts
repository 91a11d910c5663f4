// Load history follows the hash range, not the partition id: splits and merges re-cut the past.
//
// The recorder writes load per partition id. After a split the left piece keeps the parent's id,
// so without this its series would be the whole parent's until the split (forecast as hot as the
// parent, split again on the next run, never merged back), and the right piece would start with
// no past at all (no season, no forecast worth acting on). So, replaying the autopilot's splits
// and merges in time order over full-window series:
// - split of P into P (left) and R at step b: every step up to b of P's series is cut in two,
//   s·x to P and (1 − s)·x to R (R's own rows in the mixed step b are kept). The share s is the
//   one measured after the split (Σ P / Σ (P + R) over at least MIN_MEASURED_STEPS whole steps
//   before either piece changes again), else the key samples' share recorded at the split, else
//   the hash width's share (uniform keys).
// - merge of M into K at step b: K's steps up to b gain M's values; M's series is dropped.
// The sum over the pieces always equals what was measured, step by step. Pure: arrays in, arrays out.

export interface LineageEvent {
  kind: 'split' | 'merge';
  /** When the catalog changed (the clock of the autopilot), ms. */
  atMs: number;
  /** Split: the left piece (kept the parent's id). Merge: the partition that was kept. */
  partitionId: number;
  /** Split: the new right piece. Merge: the partition that was removed. */
  otherId: number;
  /** Split: the left piece's share of the load by key samples at the split, if there were samples. */
  share?: number;
  /** Split: the parent's range and the cut (the hash-width share when nothing better is known). */
  lo?: bigint;
  hi?: bigint;
  at?: bigint;
}

/** Post-split steps needed before the measured share replaces the recorded one (an hour of 15-minute steps). */
export const MIN_MEASURED_STEPS = 4;

export type Values = (number | null)[];

const add = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined ? (b ?? null) : b === null || b === undefined ? a : a + b;

/** The share of the parent's load that stays with the left piece. */
export function splitShare(ev: LineageEvent, left: Values | undefined, right: Values | undefined, from: number, to: number): { share: number; basis: 'measured' | 'samples' | 'width' | 'even' } {
  let l = 0;
  let r = 0;
  let steps = 0;
  for (let i = Math.max(0, from); i < to; i++) {
    const a = left?.[i];
    const b = right?.[i];
    if (a === null || a === undefined || b === null || b === undefined) continue;
    l += a;
    r += b;
    steps++;
  }
  if (steps >= MIN_MEASURED_STEPS && l + r > 0) return { share: l / (l + r), basis: 'measured' };
  if (ev.share !== undefined && Number.isFinite(ev.share)) return { share: Math.min(1, Math.max(0, ev.share)), basis: 'samples' };
  if (ev.lo !== undefined && ev.hi !== undefined && ev.at !== undefined && ev.hi > ev.lo && ev.at > ev.lo && ev.at < ev.hi) {
    return { share: Number(ev.at - ev.lo) / Number(ev.hi - ev.lo), basis: 'width' };
  }
  return { share: 0.5, basis: 'even' };
}

/**
 * Re-cuts full-window series (index 0 = the window's first step, all of length n) by the
 * lineage events; returns new arrays (the input is not changed). Ids that a merge removed are gone.
 */
export function applyLineage(series: ReadonlyMap<number, Values>, startMs: number, stepMs: number, n: number, events: readonly LineageEvent[]): Map<number, Values> {
  const cur = new Map<number, Values>();
  for (const [id, v] of series) cur.set(id, v.slice());
  const evs = events.slice().sort((a, b) => a.atMs - b.atMs);
  const stepOf = (ms: number) => Math.floor((ms - startMs) / stepMs);
  evs.forEach((ev, k) => {
    const b = stepOf(ev.atMs);
    if (b < 0) return; // before the window: everything in it is already per piece
    const last = Math.min(b, n - 1);
    if (ev.kind === 'merge') {
      const removed = cur.get(ev.otherId);
      cur.delete(ev.otherId);
      if (!removed) return;
      const kept = cur.get(ev.partitionId) ?? new Array<number | null>(n).fill(null);
      for (let i = 0; i <= last; i++) kept[i] = add(kept[i], removed[i]);
      cur.set(ev.partitionId, kept);
      return;
    }
    const parent = cur.get(ev.partitionId);
    if (!parent) return;
    const right = cur.get(ev.otherId) ?? new Array<number | null>(n).fill(null);
    // The measured share: whole steps after the split, until either piece changes again.
    const next = evs.slice(k + 1).find((e) => [e.partitionId, e.otherId].some((id) => id === ev.partitionId || id === ev.otherId));
    const until = Math.min(n, next ? stepOf(next.atMs) : n);
    const { share } = splitShare(ev, parent, right, b + 1, until);
    for (let i = 0; i <= last; i++) {
      const x = parent[i];
      if (x === null || x === undefined) continue;
      parent[i] = x * share;
      right[i] = add(right[i], x * (1 - share));
    }
    cur.set(ev.otherId, right);
  });
  return cur;
}
