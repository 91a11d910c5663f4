// Tests for the RoutingIndex: partition lookup, default partitions, table-name normalization.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalTableName, defaultPartitions, partitionIndexFor, RoutingIndex, RoutingTableError } from '../../config/routing.js';
import { hashKey } from '../../config/hash.js';
import { HASH_END, HASH_MIN, type RoutingTable } from '../../config/types.js';

function table(parts: { lo: bigint; hi: bigint; shardId: number }[]): RoutingTable {
  return {
    version: 3,
    shards: [0, 1, 2].map((id) => ({ id, url: '', state: 'active' as const })),
    keyspaces: [{ id: 1, name: 'k', family: 'int' }],
    tables: [{ name: 'accounts', kind: 'sharded', keyColumn: 'id', keyType: 'int8', keyspaceId: 1 }, { name: 'app.Odd', kind: 'reference' }],
    partitions: parts.map((p, i) => ({ ...p, id: i, keyspaceId: 1, state: 'active' as const })),
  };
}

describe('defaultPartitions', () => {
  it('cuts the hash space into equal contiguous ranges, in contiguous blocks per shard', () => {
    const ps = defaultPartitions(1, 6, [10, 20, 30]);
    assert.equal(ps[0]!.lo, HASH_MIN);
    assert.equal(ps[5]!.hi, HASH_END);
    for (let i = 1; i < ps.length; i++) assert.equal(ps[i]!.lo, ps[i - 1]!.hi);
    assert.deepEqual(ps.map((p) => p.shardId), [10, 10, 20, 20, 30, 30]);
    const widths = ps.map((p) => p.hi - p.lo);
    assert.ok(widths.every((w) => w - widths[0]! <= 1n && widths[0]! - w <= 1n));
  });
  it('works for one partition and for more shards than partitions', () => {
    assert.deepEqual(defaultPartitions(1, 1, [0]).map((p) => [p.lo, p.hi]), [[HASH_MIN, HASH_END]]);
    assert.deepEqual(defaultPartitions(1, 2, [0, 1, 2, 3]).map((p) => p.shardId), [0, 2]);
  });
  it('rejects bad counts', () => assert.throws(() => defaultPartitions(1, 0, [0]), RoutingTableError));
});

describe('RoutingIndex', () => {
  const idx = new RoutingIndex(table(defaultPartitions(1, 8, [0, 1, 2])));
  it('finds the partition holding a hash, at the edges too', () => {
    const ps = defaultPartitions(1, 8, [0, 1, 2]);
    for (const [i, p] of ps.entries()) {
      for (const h of [p.lo, p.hi - 1n, p.lo + (p.hi - p.lo) / 2n]) {
        assert.equal(idx.partitionFor(1, h).lo, p.lo);
        assert.equal(partitionIndexFor(h, ps.map((x) => x.lo)), i);
      }
    }
  });
  it('partitionForKey agrees with hashKey + partitionFor', () => {
    const info = idx.tableInfo('accounts')!;
    for (let k = -50; k < 50; k++) assert.equal(idx.partitionForKey(info, String(k)), idx.partitionFor(1, hashKey('int8', k)));
  });
  it('normalizes table names as written', () => {
    assert.equal(idx.tableInfo('Accounts')?.name, 'accounts');
    assert.equal(idx.tableInfo('public.ACCOUNTS')?.name, 'accounts');
    assert.equal(idx.tableInfo('"accounts"')?.name, 'accounts');
    assert.equal(idx.tableInfo('"Accounts"'), undefined);
    assert.equal(idx.tableInfo('app."Odd"')?.kind, 'reference');
    assert.equal(canonicalTableName('Public."a.b"'), 'a.b');
  });
  it('refuses a routing table with a gap or that does not reach the end', () => {
    const ps = defaultPartitions(1, 4, [0, 1]);
    assert.throws(() => new RoutingIndex(table([ps[0]!, ps[2]!, ps[3]!])), RoutingTableError);
    assert.throws(() => new RoutingIndex(table(ps.slice(0, 3))), RoutingTableError);
  });
});
