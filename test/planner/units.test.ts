// Planner unit tests: kernel, thresholds, split points on a Zipf hot set, hysteresis over time, explain, restore.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HASH_END, HASH_MIN } from '../../config/types.js';
import { determine_sharding_strategy, validateThresholds } from '../../planner/decider.js';
import { InvalidThresholdsError } from '../../planner/errors.js';
import { explainPlan, stepsToApply } from '../../planner/explain.js';
import { findSplitPoints } from '../../planner/finder.js';
import { planResharding } from '../../planner/plan.js';
import { resolveRestoreParameters } from '../../planner/restore.js';
import type { ActionRecord } from '../../planner/types.js';
import { DEFAULT_THRESHOLDS, buildInput, keySamples, loadFixtures, mulberry32 } from './workload.js';

test('determine_sharding_strategy: above max splits, below min merges, else nothing', () => {
  assert.equal(determine_sharding_strategy(301, 300, 60), 'split');
  assert.equal(determine_sharding_strategy(59, 300, 60), 'merge');
  assert.equal(determine_sharding_strategy(150, 300, 60), 'none');
});

test('contradictory thresholds are a 22023 error naming both sides', () => {
  assert.throws(() => validateThresholds({ ...DEFAULT_THRESHOLDS, partitionMinLoad: 300 }), (e: unknown) => {
    assert.ok(e instanceof InvalidThresholdsError);
    assert.equal(e.sqlstate, '22023');
    assert.match(e.message, /min load \(300\) must be below partition max load \(300\)/);
    return true;
  });
  assert.throws(() => validateThresholds({ ...DEFAULT_THRESHOLDS, shardMinUtilization: 0.8 }), { sqlstate: '22023' });
  const fx = loadFixtures()[0]!;
  assert.throws(() => planResharding(buildInput({ ...fx, thresholds: { partitionMinLoad: 500 } })), { sqlstate: '22023' });
});

test('split points on a Zipf hot set: halves within 10 % of equal load', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const samples = keySamples(HASH_MIN, HASH_END, { dist: 'zipf', n: 1000, s: 1.1 }, mulberry32(seed));
    const r = findSplitPoints(HASH_MIN, HASH_END, samples, 2)!;
    assert.equal(r.points.length, 1);
    const total = samples.reduce((a, s) => a + s.weight, 0);
    const left = samples.filter((s) => s.hash < r.points[0]!).reduce((a, s) => a + s.weight, 0) / total;
    assert.ok(Math.abs(left - 0.5) <= 0.05, `seed ${seed}: left half carries ${left}`);
    assert.ok(Math.abs(r.shares[0]! - left) < 1e-9);
  }
  const four = findSplitPoints(HASH_MIN, HASH_END, keySamples(HASH_MIN, HASH_END, { dist: 'zipf', n: 4000, s: 1.0 }, mulberry32(9)), 4)!;
  assert.equal(four.points.length, 3);
  // The heaviest key alone carries ~11 % here, so a quarter can miss by up to about half of that.
  for (const s of four.shares) assert.ok(Math.abs(s - 0.25) <= 0.06, `quarter carries ${s}`);
  assert.equal(findSplitPoints(HASH_MIN, HASH_END, [{ hash: 5n, weight: 10 }], 2), null, 'one key cannot be split');
});

test('hysteresis: a noisy flat trace replanned every 5 minutes for a day makes no step', () => {
  const fx = loadFixtures().find((f) => f.name === 'noisy-flat-hysteresis')!;
  const history: ActionRecord[] = [];
  for (let i = 0; i < 288; i++) {
    const plan = planResharding({ ...buildInput({ ...fx, seed: 1000 + i }), history });
    assert.equal(plan.steps.length, 0, `run ${i}: ${explainPlan(plan).join('\n')}`);
  }
});

test('explain: numbered steps with when, why, cost; stepsToApply pulls dependencies', () => {
  const fx = loadFixtures().find((f) => f.name === 'spare-needed')!;
  const plan = planResharding(buildInput(fx));
  const lines = explainPlan(plan);
  assert.match(lines[0]!, /^plan [0-9a-f]{8} made at/);
  assert.ok(lines.some((l) => /^step 1: /.test(l)));
  assert.ok(lines.some((l) => /ADD SHARD 9/.test(l)));
  assert.ok(lines.some((l) => /moves [0-9.]+ GB, about/.test(l)));
  const move = plan.steps.find((s) => s.action.kind === 'move' && s.action.toShard === 9)!;
  const chain = stepsToApply(plan, move.n).map((s) => s.action.kind);
  assert.deepEqual(chain.slice(-1), ['move']);
  assert.ok(chain.includes('add-shard'), 'applying the move applies the shard addition first');
});

test('restore: the forecast overrides too few partitions and logs it; PINNED is kept and logged', () => {
  const needs = { table: 'orders', partitions: 8, expectedRows: 10_000_000, expectedPeak: 2400 };
  const r = resolveRestoreParameters({ partitions: 2, expectedRows: 9_000_000, expectedPeak: 1000, pinned: new Set() }, needs);
  assert.equal(r.partitions, 8);
  assert.equal(r.expectedRows, 9_000_000, 'within 25 %: the user value stands');
  assert.equal(r.expectedPeak, 2400);
  assert.deepEqual(r.overrides.map((o) => [o.parameter, o.userValue, o.chosenValue, o.pinned]), [
    ['partitions', 2, 8, false],
    ['expected_peak', 1000, 2400, false],
  ]);
  const pinned = resolveRestoreParameters({ partitions: 2, pinned: new Set(['partitions']) }, needs);
  assert.equal(pinned.partitions, 2);
  assert.equal(pinned.overrides.length, 1);
  assert.equal(pinned.overrides[0]!.pinned, true);
  assert.match(pinned.overrides[0]!.reason, /PINNED/);
  assert.equal(resolveRestoreParameters({ partitions: 16, pinned: new Set() }, needs).partitions, 16, 'more partitions than needed are kept');
  assert.throws(() => resolveRestoreParameters({ partitions: 0, pinned: new Set() }, needs), { sqlstate: '22023' });
  assert.throws(() => resolveRestoreParameters({ pinned: new Set(['expected_rows']) }, needs), { sqlstate: '22023' });
});

test('short of servers: placement gives up headroom (up to shortageFill of the latency limit), never the plan; with shortageFill 0 nothing is moved', () => {
  const fx = loadFixtures().find((f) => f.name === 'spare-pool-short-stretch')!;
  const stretched = planResharding(buildInput(fx));
  const move = stretched.steps.find((s) => s.action.kind === 'move');
  assert.ok(move, 'a move that fits below 81 % is planned');
  const ask = stretched.steps.find((s) => s.action.kind === 'needs-capacity')!;
  assert.equal(ask.startReason, 'asks-operator');
  assert.match(ask.why, /fills shards up to 81 %/);
  for (const s of stretched.shardPeaks) assert.ok(s.peakLoad <= s.capacity * 0.81 + 1e-6, `shard ${s.shardId} peaks at ${s.peakLoad}`);
  const strict = planResharding({ ...buildInput(fx), knobs: { shortageFill: 0 } });
  assert.deepEqual(strict.steps.map((s) => s.action.kind), ['needs-capacity'], 'nothing half-done without the stretch');
  assert.ok(strict.reasons.some((r) => r.code === 'spare-pool-empty'));
});

test('within the cooldown after a drain, an overload that fits the stretched cap takes headroom, not a server back (no thrash)', () => {
  const fx = loadFixtures().find((f) => f.name === 'spare-pool-short-stretch')!;
  const base = buildInput(fx);
  const withSpare = { ...base, spareShards: [{ shardId: 9, capacity: 1000 }] };
  const drainedAt = (minutesAgo: number): ActionRecord[] => [{ kind: 'drain-shard', atMs: base.nowMs - minutesAgo * 60_000, shardId: 3 }];
  const recent = planResharding({ ...withSpare, history: drainedAt(30) });
  const kinds = recent.steps.map((s) => s.action.kind);
  assert.ok(!kinds.includes('add-shard'), `no server added back 30 min after a drain: ${kinds}`);
  assert.ok(!kinds.includes('needs-capacity'), 'spares exist: nothing to ask for');
  assert.ok(kinds.includes('move'));
  assert.ok(recent.reasons.some((r) => r.code === 'cooldown' && /drained/.test(r.message)));
  const later = planResharding({ ...withSpare, history: drainedAt(180) });
  assert.ok(later.steps.some((s) => s.action.kind === 'add-shard'), 'after the cooldown the spare is used as usual');
});
