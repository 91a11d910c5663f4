// Fixture-driven planner tests: each JSON fixture declares a seeded workload and the plan it must produce.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planResharding } from '../../planner/plan.js';
import type { Plan, PlanStep } from '../../planner/types.js';
import { buildInput, loadFixtures, type ExpectedStep } from './workload.js';

function touches(step: PlanStep): number[] {
  const a = step.action;
  switch (a.kind) {
    case 'split':
      return [a.partitionId];
    case 'move':
      return [a.partitionId];
    case 'merge':
      return [a.a, a.b];
    default:
      return [];
  }
}

function matches(step: PlanStep, e: ExpectedStep): boolean {
  const a = step.action as Record<string, unknown>;
  if (a['kind'] !== e.kind) return false;
  if (e.partition !== undefined && !touches(step).includes(e.partition)) return false;
  if (e.toShard !== undefined && a['toShard'] !== e.toShard) return false;
  if (e.fromShard !== undefined && a['fromShard'] !== e.fromShard) return false;
  if (e.spare !== undefined && a['spare'] !== e.spare) return false;
  if (e.shard !== undefined && a['shard'] !== e.shard) return false;
  if (e.startReason !== undefined && step.startReason !== e.startReason) return false;
  if (e.trigger !== undefined && step.trigger !== e.trigger) return false;
  return true;
}

const show = (p: Plan) => JSON.stringify(p.steps.map((s) => ({ n: s.n, ...s.action, start: s.startReason, trigger: s.trigger })), (_k, v) => (typeof v === 'bigint' ? String(v) : v));

for (const fx of loadFixtures()) {
  test(`fixture ${fx.name}: ${fx.description}`, () => {
    const plan = planResharding(buildInput(fx));
    const e = fx.expect;
    if (e.steps) {
      assert.equal(plan.steps.length, e.steps.length, `steps: ${show(plan)}`);
      e.steps.forEach((x, i) => assert.ok(matches(plan.steps[i]!, x), `step ${i + 1} should match ${JSON.stringify(x)}: ${show(plan)}`));
    }
    if (e.includes) {
      let from = 0;
      for (const x of e.includes) {
        const i = plan.steps.findIndex((s, k) => k >= from && matches(s, x));
        assert.ok(i >= 0, `expected ${JSON.stringify(x)} in order: ${show(plan)}`);
        from = i + 1;
      }
    }
    for (const k of e.noKinds ?? []) assert.ok(!plan.steps.some((s) => s.action.kind === k), `no ${k} expected: ${show(plan)}`);
    for (const id of e.untouched ?? []) assert.ok(!plan.steps.some((s) => touches(s).includes(id)), `partition ${id} must be untouched: ${show(plan)}`);
    for (const r of e.reasons ?? []) assert.ok(plan.reasons.some((x) => x.code === r), `reason ${r} expected: ${JSON.stringify(plan.reasons)}`);
    if (e.forecastMiss !== undefined) assert.equal(plan.forecastMiss.length, e.forecastMiss, JSON.stringify(plan.forecastMiss));
    // Invariants every plan keeps.
    plan.steps.forEach((s, i) => assert.equal(s.n, i + 1, 'steps are numbered 1..n in order'));
    for (const s of plan.steps) {
      for (const d of s.dependsOn) {
        assert.ok(d < s.n, `step ${s.n} depends on a later step ${d}`);
        assert.ok(plan.steps[d - 1]!.startAtMs <= s.startAtMs, 'a dependency never starts after its dependent');
      }
      assert.ok(s.startAtMs >= plan.createdAtMs);
      assert.ok(s.why.length > 20, 'every step says why');
      if (s.deadlineMs !== undefined && s.startReason === 'low-window') {
        assert.ok(s.startAtMs + s.estimatedSeconds * 1000 <= s.deadlineMs, `step ${s.n} finishes before its deadline`);
      }
    }
    assert.equal(planResharding(buildInput(fx)).planId, plan.planId, 'the same input gives the same plan');
  });
}
