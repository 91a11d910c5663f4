// The per-shard sequence scheme of sharded tables: shard i hands out values congruent to i+1 modulo the stride.

/**
 * Sequences and identity columns of a sharded table never collide across shards: every shard
 * keeps its own sequence, stepping by SEQUENCE_STRIDE from its own start, so shard i hands out
 * exactly the values congruent to i+1 modulo the stride (shard 0: 1, 65, 129…; shard 1: 2, 66…).
 * The stride is fixed (not the shard count) so that shards added later get residues of their
 * own without renumbering anyone; it caps the scheme at SEQUENCE_STRIDE shards. An integer
 * serial still has 2^31/64 ≈ 33 million values per shard; bigserial is the sensible key.
 */
export const SEQUENCE_STRIDE = 64;

/**
 * The first value shard `shardId` may hand out when values up to `floor` may already exist
 * (rows written before the table was sharded, or by other shards before this one was added):
 * the smallest v > floor with v ≡ shardId + 1 (mod SEQUENCE_STRIDE).
 */
export function sequenceStart(shardId: number, floor: bigint = 0n): bigint {
  const stride = BigInt(SEQUENCE_STRIDE);
  const residue = BigInt(shardId + 1);
  const gap = (((residue - floor) % stride) + stride) % stride;
  return floor + (gap === 0n ? stride : gap);
}
