// `SELECT setval('seq', v [, is_called])` — how pg_dump restores a sequence — sent to every shard.
//
// A sharded table's serial or identity sequence follows the per-shard scheme (config/sequences.ts:
// increment SEQUENCE_STRIDE, shard i hands out values ≡ i+1). Routed to one shard as any other
// SELECT without a table, a restore's setval would leave the other shards' sequences at their
// start, below the restored ids (collisions), and put the one shard off its residue. So each shard
// runs its own setval: in-scheme sequences go to their first residue value above v, others to v.
import { SEQUENCE_STRIDE, sequenceStart } from '../../config/sequences.js';

const SETVAL = /^\s*select\s+(?:pg_catalog\s*\.\s*)?setval\s*\(\s*'([^'\\]+)'(?:\s*::\s*regclass)?\s*,\s*(\d+)\s*(?:,\s*(true|false)\s*)?\)\s*;?\s*$/i;

export interface SetvalCall {
  sequence: string;
  value: bigint;
  isCalled: boolean;
}

/** The call, when `sql` is exactly one setval with literal arguments (as pg_dump writes it). */
export function parseSetval(sql: string): SetvalCall | null {
  const m = SETVAL.exec(sql);
  if (!m) return null;
  return { sequence: m[1]!, value: BigInt(m[2]!), isCalled: (m[3] ?? 'true').toLowerCase() === 'true' };
}

/**
 * The statement shard `shardId` runs. Every shard's answer is one row (the client's `v`, as the
 * server would answer) from the first shard and none from the others, so the merged result is
 * what one server would have said.
 */
export function shardSetvalSql(call: SetvalCall, shardId: number, answers: boolean): string {
  // v was handed out (is_called) or is the next value to hand out: the highest value in use.
  const floor = call.isCalled ? call.value : call.value - 1n;
  const start = sequenceStart(shardId, floor < 0n ? 0n : floor);
  const seq = `'${call.sequence}'`;
  const set = `pg_catalog.setval(q.oid, CASE WHEN q.inc = ${SEQUENCE_STRIDE} THEN ${start} ELSE ${call.value} END, CASE WHEN q.inc = ${SEQUENCE_STRIDE} THEN false ELSE ${call.isCalled} END)`;
  const from = `(SELECT seqrelid AS oid, seqincrement AS inc FROM pg_catalog.pg_sequence WHERE seqrelid = ${seq}::regclass) q`;
  return `SELECT CASE WHEN s.r IS NULL THEN NULL ELSE ${call.value}::int8 END AS setval FROM (SELECT ${set} AS r FROM ${from}) s${answers ? '' : ' WHERE s.r IS NULL'}`;
}
