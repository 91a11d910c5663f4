// The reactive fallback under an unannounced flash crowd (issue 8, seeds 7 and 2024): a surge is
// projected one interval ahead, the surging range leaves its shard first (to a spare if it fits
// nowhere else), one copy at a time off the hot shard, and what answers a crossing now comes
// first in the plan.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planResharding } from '../../planner/plan.js';
import type { Plan, PlanStep } from '../../planner/types.js';
import { buildInput, flatPartition, inlineFixture, type Fixture, type FixturePartition } from './workload.js';

const kinds = (p: Plan) => p.steps.map((s) => s.action.kind);
const moves = (p: Plan) => p.steps.filter((s): s is PlanStep & { action: { kind: 'move'; partitionId: number; fromShard: number; toShard: number } } => s.action.kind === 'move');

const fixture = (partitions: FixturePartition[], extra: Partial<Fixture> = {}): Fixture => inlineFixture('2025-03-04T12:00:00Z', partitions, extra);

const flat = (id: number, from: number, to: number, shard: number, level: number, bytes = 5e9, more: Partial<FixturePartition> = {}): FixturePartition =>
  flatPartition(id, from, to, shard, level, { bytes, spread: 0.1, ...more });

test('surge: a partition over its forecast that rose > 25 % in one interval is taken to rise once more by as much', () => {
  // Forecast 100 (p90 110); measured 250, up from 120: 380 before the next measurement, over the split limit of 300.
  const parts = (previous?: number) => [flat(1, 0, 0.25, 1, 100, 5e9, { actual: 250, ...(previous !== undefined ? { previous } : {}) }), flat(2, 0.25, 1, 2, 200)];
  const surging = planResharding(buildInput(fixture(parts(120))));
  assert.ok(kinds(surging).includes('split'), `split on the projection: ${kinds(surging)}`);
  const split = surging.steps.find((s) => s.action.kind === 'split')!;
  assert.equal(split.trigger, 'reactive');
  assert.equal(split.startReason, 'now-urgent');
  assert.match(split.why, /measured 250 now, up from 120 the interval before, and is taken to reach 380/);
  assert.equal(surging.forecastMiss.length, 1);
  assert.match(surging.forecastMiss[0]!.message, /surging towards 380/);
  // Without the interval before, a slow rise (+14 %), or with surgeRise 0: 250 stands in, under the limit.
  for (const [name, plan] of [
    ['no previous', planResharding(buildInput(fixture(parts())))],
    ['slow rise', planResharding(buildInput(fixture(parts(220))))],
    ['surgeRise 0', planResharding(buildInput(fixture(parts(120), { knobs: { surgeRise: 0 } })))],
  ] as const) {
    assert.ok(!kinds(plan).includes('split'), `${name}: ${kinds(plan)}`);
  }
});

// Shard 1: A 200 (10 GB), B 150 (5 GB), C 100 (5 GB) and H, forecast 80 but measured 200, up from
// 120: 280 stands in, so shard 1 is at 730 now (cap 700). Shard 2 has 400: room for B or C under
// 630, not for H. Moving C (fewest bytes that fixes it) leaves H's surge on shard 1.
const surgeBed = (more: Partial<FixturePartition> = {}) => [
  flat(1, 0, 0.2, 1, 200, 10e9),
  flat(2, 0.2, 0.4, 1, 150),
  flat(3, 0.4, 0.6, 1, 100),
  flat(4, 0.6, 0.65, 1, 80, 3e9, { actual: 200, previous: 120, ...more }),
  flat(5, 0.65, 0.8, 2, 200),
  flat(6, 0.8, 1, 2, 200),
];

test('surge: the surging range leaves its shard first, to a spare when no shard has room for it', () => {
  const plan = planResharding(buildInput(fixture(surgeBed())));
  const m = moves(plan);
  assert.deepEqual(m.map((s) => [s.action.partitionId, s.action.fromShard, s.action.toShard]), [[4, 1, 9]], `H to the spare, nothing cold off the hot shard: ${JSON.stringify(plan.steps.map((s) => s.action))}`);
  assert.ok(kinds(plan).includes('add-shard'));
  assert.ok(m.every((s) => s.startReason === 'now-urgent' && s.trigger === 'reactive'));
  // No surge (no interval before): the measured 200 puts shard 1 at 650, under its cap.
  assert.deepEqual(moves(planResharding(buildInput(fixture(surgeBed({ previous: undefined }))))), []);
  // Without a spare, the cold partition goes where it fits (as before).
  const noSpare = planResharding(buildInput(fixture(surgeBed(), { spares: [] })));
  assert.deepEqual(moves(noSpare).map((s) => [s.action.partitionId, s.action.toShard]), [[3, 2]]);
});

test('surge: one copy at a time off a shard surging over its cap; the rest waits for the next plan', () => {
  // Two surging ranges on shard 1 (each 260 before the next measurement): 1,020 against 700.
  const parts = [
    flat(1, 0, 0.2, 1, 250, 10e9),
    flat(2, 0.2, 0.3, 1, 100, 3e9, { actual: 180, previous: 100 }),
    flat(3, 0.3, 0.4, 1, 100, 3e9, { actual: 180, previous: 100 }),
    flat(4, 0.4, 0.6, 1, 250, 10e9),
    flat(5, 0.6, 1, 2, 100),
  ];
  const plan = planResharding(buildInput(fixture(parts, { shards: [{ id: 1, capacity: 1000 }, { id: 2, capacity: 1000 }, { id: 3, capacity: 1000 }] })));
  const off1 = moves(plan).filter((s) => s.action.fromShard === 1);
  assert.equal(off1.length, 1, `one copy off shard 1: ${JSON.stringify(plan.steps.map((s) => s.action))}`);
  assert.ok([2, 3].includes(off1[0]!.action.partitionId), 'a surging range');
  assert.ok(plan.reasons.some((r) => r.shardId === 1 && /one copy at a time/.test(r.message)));
  // A copy off shard 1 already running (partition 1 to shard 3): nothing more off it in this plan.
  const busy = planResharding(buildInput(fixture(parts, { shards: [{ id: 1, capacity: 1000 }, { id: 2, capacity: 1000 }, { id: 3, capacity: 1000 }], runningJobs: [{ partition: 1, kind: 'move', toShard: 3 }] })));
  assert.deepEqual(moves(busy).filter((s) => s.action.fromShard === 1), []);
});

test('steps that answer a crossing now come first among those due now', () => {
  // Shard 2 crosses its cap in 45 minutes (its moves start now: no window fits) and is the worse
  // overloaded, so placement reaches it first; shard 1 surges over its cap now.
  const ramp = (id: number, from: number, to: number): FixturePartition => ({ id, from, to, shard: 2, bytes: 5e9, load: { shape: 'ramp', from: 100, to: 290 }, spread: 0, keys: { dist: 'uniform', n: 200 } });
  const parts = [...surgeBed().slice(0, 4), ramp(5, 0.65, 0.75), ramp(6, 0.75, 0.85), ramp(7, 0.85, 0.95), ramp(8, 0.95, 1)];
  const plan = planResharding(buildInput(fixture(parts, { shards: [1, 2, 3].map((id) => ({ id, capacity: 1000 })), spares: [9, 10, 11].map((id) => ({ id, capacity: 1000 })), horizonSteps: 8, knobs: { placementLookaheadSeconds: 2 * 3600 } })));
  const now = plan.createdAtMs;
  const dueNow = plan.steps.filter((s) => s.startAtMs === now);
  const firstOther = dueNow.findIndex((s) => s.startReason !== 'now-urgent' && s.trigger !== 'reactive');
  const lastUrgent = dueNow.map((s) => s.startReason === 'now-urgent').lastIndexOf(true);
  assert.ok(lastUrgent >= 0 && firstOther >= 0, `both kinds due now: ${JSON.stringify(dueNow.map((s) => [s.action.kind, s.startReason, s.trigger]))}`);
  assert.ok(lastUrgent < firstOther, `urgent first: ${JSON.stringify(dueNow.map((s) => [s.n, s.action.kind, s.startReason]))}`);
});

test('surge: a surging partition that must split is cut into even pieces that copy in surgePieceSeconds', () => {
  // 20 GB surging towards 380 (over 300): 2 pieces would do for the load, but each would take
  // 100 s at full speed (400 s off a hot shard); 3 GB pieces (30 s at 100 MB/s) make 7.
  const parts = [flat(1, 0, 0.25, 1, 100, 20e9, { actual: 250, previous: 120 }), flat(2, 0.25, 1, 2, 200)];
  const splits = (p: Plan) => p.steps.filter((s) => s.action.kind === 'split').length;
  const plan = planResharding(buildInput(fixture(parts)));
  assert.equal(splits(plan), 6, `7 pieces: ${kinds(plan)}`);
  assert.match(plan.steps.find((s) => s.action.kind === 'split')!.why, /Split into 7 pieces at hash midpoints/);
  assert.equal(splits(planResharding(buildInput(fixture(parts, { knobs: { surgePieceSeconds: 0 } })))), 1, 'split on the load alone: 2 pieces');
  // Not surging (no interval before): the measured 250 is under the limit, no split at all.
  assert.equal(splits(planResharding(buildInput(fixture([flat(1, 0, 0.25, 1, 100, 20e9, { actual: 250 }), parts[1]!])))), 0);
});
