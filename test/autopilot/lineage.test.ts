// History follows the range: splits cut a parent's past between its pieces, merges add the removed partition's past.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyLineage, splitShare, MIN_MEASURED_STEPS, type LineageEvent, type Values } from '../../autopilot/lineage.js';

const STEP = 900_000;
const T0 = Date.UTC(2030, 0, 1);
const at = (i: number, within = 0) => T0 + i * STEP + within;

function sumAt(m: Map<number, Values>, ids: number[], i: number): number {
  return ids.reduce((a, id) => a + (m.get(id)?.[i] ?? 0), 0);
}

describe('applyLineage', () => {
  it('a split gives each piece its share of the parent past (recorded key-sample share), conserving every step', () => {
    // Partition 5 carried 100/step until the split during step 3; after it 5 kept 30, 9 took 70.
    const raw = new Map<number, Values>([
      [5, [100, 100, 100, 100, 30, 30]],
      [9, [null, null, null, 60, 70, 70]],
      [2, [10, 10, 10, 10, 10, 10]],
    ]);
    const ev: LineageEvent = { kind: 'split', atMs: at(3, 400_000), partitionId: 5, otherId: 9, share: 0.25 };
    const out = applyLineage(raw, T0, STEP, 6, [ev]);
    assert.deepEqual(out.get(5), [25, 25, 25, 25, 30, 30], 'the left piece keeps the recorded 25 % of the past (2 post-split steps are too few to measure)');
    assert.deepEqual(out.get(9), [75, 75, 75, 135, 70, 70], 'the right piece gets the rest, plus its own rows of the mixed step');
    assert.deepEqual(out.get(2), raw.get(2), 'other partitions are untouched');
    for (let i = 0; i < 6; i++) assert.equal(sumAt(out, [5, 9], i), sumAt(raw, [5, 9], i), `step ${i} conserved`);
    assert.deepEqual(raw.get(5), [100, 100, 100, 100, 30, 30], 'the input is not changed');
  });

  it(`the measured share wins after ${MIN_MEASURED_STEPS} whole post-split steps; without samples, the hash width`, () => {
    const raw = new Map<number, Values>([
      [5, [80, 80, 20, 20, 20, 20, 20]],
      [9, [null, null, 60, 60, 60, 60, 60]],
    ]);
    const measured = applyLineage(raw, T0, STEP, 7, [{ kind: 'split', atMs: at(1, 899_000), partitionId: 5, otherId: 9, share: 0.9 }]);
    assert.deepEqual(measured.get(5), [20, 20, 20, 20, 20, 20, 20], 'measured 20/80 = 25 %, not the recorded 90 %');
    assert.deepEqual(measured.get(9), [60, 60, 60, 60, 60, 60, 60]);
    const width = splitShare({ kind: 'split', atMs: 0, partitionId: 5, otherId: 9, lo: 0n, hi: 1000n, at: 100n }, undefined, undefined, 0, 0);
    assert.deepEqual(width, { share: 0.1, basis: 'width' });
    assert.deepEqual(splitShare({ kind: 'split', atMs: 0, partitionId: 5, otherId: 9 }, undefined, undefined, 0, 0), { share: 0.5, basis: 'even' });
  });

  it('a merge adds the removed partition past to the kept one and drops its series; split then merge restores the parent', () => {
    const raw = new Map<number, Values>([
      [5, [100, 100, 50, 50, 50, 50, 50, 50, 100, 100]],
      [9, [null, null, 50, 50, 50, 50, 50, 50, null, null]],
    ]);
    const events: LineageEvent[] = [
      { kind: 'merge', atMs: at(7, 899_999), partitionId: 5, otherId: 9 },
      { kind: 'split', atMs: at(1, 899_999), partitionId: 5, otherId: 9, share: 0.5 },
    ];
    const out = applyLineage(raw, T0, STEP, 10, events);
    assert.equal(out.has(9), false, 'the removed partition has no series any more');
    assert.deepEqual(out.get(5), [100, 100, 100, 100, 100, 100, 100, 100, 100, 100], 'the merged range has its whole past');
  });

  it('events before the window change nothing; a split after the window cuts all of it; missing steps stay missing', () => {
    const raw = new Map<number, Values>([[5, [40, null, 40]]]);
    const before = applyLineage(raw, T0, STEP, 3, [{ kind: 'split', atMs: T0 - STEP, partitionId: 5, otherId: 9, share: 0.5 }]);
    assert.deepEqual(before.get(5), [40, null, 40]);
    assert.equal(before.has(9), false);
    const after = applyLineage(raw, T0, STEP, 3, [{ kind: 'split', atMs: at(5), partitionId: 5, otherId: 9, share: 0.75 }]);
    assert.deepEqual(after.get(5), [30, null, 30]);
    assert.deepEqual(after.get(9), [10, null, 10]);
  });
});
