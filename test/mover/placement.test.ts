// Unit tests of DRAIN SHARD's placement, the capacity refusal and the admin size parser (no servers).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sequenceStart, SEQUENCE_STRIDE } from '../../config/sequences.js';
import { capacityRefusal, placePartitions, type PlacementTarget } from '../../mover/index.js';
import { parseSize } from '../../proxy/admin/size.js';

const target = (shardId: number, partitions: number, bytes: number, maxBytes: number | null = null, usedBytes = 0): PlacementTarget =>
  ({ shardId, partitions, bytes, maxBytes, usedBytes, reservedBytes: 0 });

test('equal partitions are spread so partition counts end up balanced', () => {
  const parts = [1, 2, 3, 4, 5, 6].map((id) => ({ partitionId: id, bytes: 1000 }));
  const p = placePartitions(parts, [target(1, 3, 3000), target(2, 0, 0)]);
  assert.equal(p.unplaced.length, 0);
  const count = (s: number) => p.assignments.filter((a) => a.shardId === s).length;
  // 3 + x on shard 1 and 6 - x on shard 2: balanced means both end with 4 or 5 (total 9).
  assert.ok(Math.abs((3 + count(1)) - count(2)) <= 1, JSON.stringify(p.assignments));
});

test('one big partition does not drag every small one onto the other shard, and bytes stay balanced', () => {
  const parts = [{ partitionId: 1, bytes: 9000 }, ...[2, 3, 4, 5].map((id) => ({ partitionId: id, bytes: 1000 }))];
  const p = placePartitions(parts, [target(1, 2, 2000), target(2, 2, 2000)]);
  const big = p.assignments.find((a) => a.partitionId === 1)!;
  const other = big.shardId === 1 ? 2 : 1;
  const smallOnOther = p.assignments.filter((a) => a.partitionId !== 1 && a.shardId === other).length;
  assert.ok(smallOnOther >= 3, `the small ones go mostly to the shard without the big one: ${JSON.stringify(p.assignments)}`);
});

test('a target without room under max_bytes is skipped; none with room leaves the partition unplaced', () => {
  const p = placePartitions([{ partitionId: 7, bytes: 5000 }], [target(1, 0, 0, 10_000, 8_000), target(2, 9, 90_000)]);
  assert.deepEqual(p.assignments.map((a) => a.shardId), [2]);
  const q = placePartitions([{ partitionId: 7, bytes: 5000 }], [target(1, 0, 0, 10_000, 8_000)]);
  assert.deepEqual(q.unplaced.map((u) => u.partitionId), [7]);
  // Room is consumed by earlier placements of the same drain.
  const r = placePartitions([{ partitionId: 1, bytes: 3000 }, { partitionId: 2, bytes: 3000 }], [target(1, 0, 0, 10_000, 5_000)]);
  assert.equal(r.assignments.length, 1);
  assert.equal(r.unplaced.length, 1);
});

test('the capacity refusal is SQLSTATE 53100 and names every number', () => {
  const room = { shardId: 3, maxBytes: 10 * 1024 * 1024, usedBytes: 9 * 1024 * 1024, reservedBytes: 512 * 1024, reservedJobs: [4] };
  assert.equal(capacityRefusal(room, 12, 100 * 1024), null);
  const err = capacityRefusal(room, 12, 2 * 1024 * 1024)!;
  assert.equal(err.sqlstate, '53100');
  for (const part of ['shard 3', 'partition 12', 'pg_database_size', 'jobs 4', 'max_bytes', String(10 * 1024 * 1024), String(9 * 1024 * 1024), String(2 * 1024 * 1024)]) {
    assert.ok(err.message.includes(part), `"${part}" in: ${err.message}`);
  }
  assert.equal(capacityRefusal({ ...room, maxBytes: null }, 12, 1e15), null);
});

test('sizes parse like pg_size_bytes (units of 1024) and bad ones are 22023', () => {
  assert.equal(parseSize("'50 GB'"), 50 * 1024 ** 3);
  assert.equal(parseSize('512MB'), 512 * 1024 ** 2);
  assert.equal(parseSize('1234'), 1234);
  assert.equal(parseSize("'1.5 kB'"), 1536);
  assert.equal(parseSize('none'), null);
  for (const bad of ['lots', '-5', '0', '12 parsecs', "''"]) {
    assert.throws(() => parseSize(bad), (e: { sqlstate?: string }) => e.sqlstate === '22023', bad);
  }
});

test('sequence starts keep each shard on its residue and above values already handed out', () => {
  assert.equal(sequenceStart(0), 1n);
  assert.equal(sequenceStart(2), 3n);
  for (const [shard, floor] of [[0, 100n], [2, 129n], [5, 6n], [63, 1000n]] as const) {
    const v = sequenceStart(shard, floor);
    assert.ok(v > floor);
    assert.ok(v - floor <= BigInt(SEQUENCE_STRIDE));
    assert.equal(((v - BigInt(shard + 1)) % BigInt(SEQUENCE_STRIDE) + BigInt(SEQUENCE_STRIDE)) % BigInt(SEQUENCE_STRIDE), 0n);
  }
});
