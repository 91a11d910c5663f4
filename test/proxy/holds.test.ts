// RangeHolds (proxy/holds.ts) without servers: the hot path's flag, and holds of the same job placed
// by this process's mover and by another proxy's (through the catalog) kept apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RangeHolds } from '../../proxy/holds.js';

const range = { jobId: 7, keyspaceId: 1, lo: -100n, hi: 100n };
const hashParts = (h: bigint) => ({ hi: Number(BigInt.asIntN(32, h >> 32n)), lo: Number(BigInt.asIntN(32, h & 0xffffffffn)) });

test('active only while some hold is placed; holdsHash covers [lo, hi) of its key space', () => {
  const h = new RangeHolds();
  assert.equal(h.active, false);
  assert.equal(h.holdsHash(1, hashParts(0n)), false);
  h.hold(range);
  assert.equal(h.active, true);
  assert.equal(h.holdsHash(1, hashParts(-100n)), true);
  assert.equal(h.holdsHash(1, hashParts(99n)), true);
  assert.equal(h.holdsHash(1, hashParts(100n)), false);
  assert.equal(h.holdsHash(2, hashParts(0n)), false);
  h.release(range);
  assert.equal(h.active, false);
});

test('ending a remote hold (its deadline) leaves the local hold of the same job in place, and the other way round', () => {
  const h = new RangeHolds();
  let woken = 0;
  h.hold(range, 'remote');
  h.hold(range); // this process took the job over and holds it itself
  h.onRelease(() => woken++);
  h.release(range, 'remote');
  assert.equal(woken, 1, 'waiters are woken to look again');
  assert.equal(h.active, true, 'the local hold stays');
  assert.equal(h.holdsKeyspace(1), true);
  h.hold(range, 'remote');
  h.release(range);
  assert.equal(h.active, true, 'the remote hold stays');
  h.release(range, 'remote');
  assert.equal(h.active, false);
  assert.equal(h.list().length, 0);
});

test('each hold gets a sequence after every touch noted so far, and the source shard the routing gave when it was placed', () => {
  let owner: number | null = 3;
  const h = new RangeHolds(() => {
    if (owner === null) throw new Error('key space 1 has no partitions');
    return owner;
  });
  const before = h.now;
  h.hold(range);
  const [held] = h.forJob(range.jobId);
  assert.ok(held!.seq > before, 'a touch noted before the hold is older than it');
  assert.ok(h.now >= held!.seq, 'a touch noted from now on is not');
  assert.equal(held!.source, 3);
  owner = 4; // the routing switched while holding: the hold keeps the shard it fences
  h.hold(range);
  assert.equal(h.forJob(range.jobId).length, 1, 'the same hold again changes nothing');
  assert.equal(h.forJob(range.jobId)[0]!.source, 3);
  owner = null;
  h.hold(range, 'remote');
  const remote = h.forJob(range.jobId).find((x) => x.owner === 'remote')!;
  assert.equal(remote.source, null, 'unknown source: every shard counts as the source');
  assert.ok(remote.seq > held!.seq);
});
