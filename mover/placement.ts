// Where the partitions of a draining shard go: a pure, greedy balance of partition count and bytes.
//
// Largest partition first, each to the target whose (bytes share + partition-count share) is
// lowest after taking it, among the targets with room under their max_bytes. Balancing bytes
// alone would pile every small partition onto one shard next to a big one; counting partitions
// alone would ignore that one partition can outweigh ten. The two shares are fractions of the
// totals after the drain, so neither unit dominates.

export interface PlacementTarget {
  shardId: number;
  /** Partitions it owns now (every key space). */
  partitions: number;
  /** Bytes of sharded tables it holds now (the balance measure). */
  bytes: number;
  /** Declared capacity (null: unlimited), its pg_database_size and what planned moves reserved. */
  maxBytes: number | null;
  usedBytes: number;
  reservedBytes: number;
}

export interface Movable {
  partitionId: number;
  bytes: number;
}

export interface Placement {
  assignments: { partitionId: number; shardId: number; bytes: number }[];
  /** Partitions no target has room for (then nothing should be started). */
  unplaced: Movable[];
}

export function placePartitions(parts: readonly Movable[], targets: readonly PlacementTarget[]): Placement {
  const state = targets.map((t) => ({ ...t, incoming: 0 }));
  const totalBytes = Math.max(1, state.reduce((a, t) => a + t.bytes, 0) + parts.reduce((a, p) => a + p.bytes, 0));
  const totalParts = Math.max(1, state.reduce((a, t) => a + t.partitions, 0) + parts.length);
  const order = [...parts].sort((a, b) => b.bytes - a.bytes || a.partitionId - b.partitionId);
  const out: Placement = { assignments: [], unplaced: [] };
  for (const p of order) {
    let best: (typeof state)[number] | undefined;
    let bestScore = Infinity;
    for (const t of state) {
      if (t.maxBytes !== null && t.usedBytes + t.reservedBytes + t.incoming + p.bytes > t.maxBytes) continue;
      const score = (t.bytes + p.bytes) / totalBytes + (t.partitions + 1) / totalParts;
      if (score < bestScore - 1e-12 || (Math.abs(score - bestScore) <= 1e-12 && best && t.shardId < best.shardId)) {
        best = t;
        bestScore = score;
      }
    }
    if (!best) {
      out.unplaced.push(p);
      continue;
    }
    best.bytes += p.bytes;
    best.partitions += 1;
    best.incoming += p.bytes;
    out.assignments.push({ partitionId: p.partitionId, shardId: best.shardId, bytes: p.bytes });
  }
  return out;
}
