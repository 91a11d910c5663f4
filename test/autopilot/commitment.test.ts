// Re-planning keeps the earlier start of a scale-down step, so the step comes due instead of receding.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keepEarlierStarts } from '../../autopilot/commitment.js';
import type { Plan, PlanStep } from '../../planner/index.js';

const H = 3_600_000;
const T0 = Date.UTC(2030, 0, 1, 19);

function step(n: number, action: PlanStep['action'], startAtMs: number, extra: Partial<PlanStep> = {}): PlanStep {
  return {
    n, action, range: { lo: -100n, hi: 100n }, startAtMs, startReason: 'low-window', why: 'w.', bytesToMove: 0, estimatedSeconds: 5,
    dependsOn: [], trigger: 'scale-down', ...extra,
  };
}

function plan(id: string, createdAtMs: number, steps: PlanStep[]): Plan {
  return { planId: id, createdAtMs, steps, reasons: [], forecastMiss: [], shardPeaks: [] };
}

const move = { kind: 'move', partitionId: 4, fromShard: 1, toShard: 0 } as const;
const merge = { kind: 'merge', a: 1, b: 4 } as const;

describe('keepEarlierStarts', () => {
  it('a step the previous plan scheduled earlier keeps that start; once it has passed, the step is due now', () => {
    const a = plan('a', T0, [step(1, move, T0 + H), step(2, merge, T0 + H, { dependsOn: [1] })]);
    const b = plan('b', T0 + 1.2 * H, [step(1, move, T0 + 2.2 * H), step(2, merge, T0 + 2.2 * H, { dependsOn: [1] })]);
    const kept = keepEarlierStarts(a, b, 8 * H);
    assert.deepEqual(kept.steps.map((s) => s.startAtMs), [T0 + 1.2 * H, T0 + 1.2 * H], 'due at the new plan\'s now');
    assert.match(kept.steps[0]!.why, /Start kept from plan a/);
    const c = plan('c', T0 + 0.5 * H, [step(1, move, T0 + 3 * H)]);
    assert.equal(keepEarlierStarts(a, c, 8 * H).steps[0]!.startAtMs, T0 + H, 'the earlier start, still ahead');
    assert.equal(b.steps[0]!.startAtMs, T0 + 2.2 * H, 'the input plan is not changed');
  });

  it('leaves alone: another step, a later previous start, a step with a deadline, a forecast-triggered move, a stale previous plan', () => {
    const a = plan('a', T0, [step(1, move, T0 + H), step(2, { ...move, toShard: 2 }, T0 + H)]);
    const other = plan('b', T0 + H, [step(1, { ...move, partitionId: 5 }, T0 + 3 * H)]);
    assert.equal(keepEarlierStarts(a, other, 8 * H).steps[0]!.startAtMs, T0 + 3 * H);
    const sooner = plan('b', T0 + 0.2 * H, [step(1, move, T0 + 0.5 * H)]);
    assert.equal(keepEarlierStarts(a, sooner, 8 * H).steps[0]!.startAtMs, T0 + 0.5 * H);
    const deadline = plan('b', T0 + H, [step(1, move, T0 + 3 * H, { deadlineMs: T0 + 5 * H })]);
    assert.equal(keepEarlierStarts(a, deadline, 8 * H).steps[0]!.startAtMs, T0 + 3 * H);
    const forecast = plan('b', T0 + H, [step(1, move, T0 + 3 * H, { trigger: 'forecast' })]);
    assert.equal(keepEarlierStarts(a, forecast, 8 * H).steps[0]!.startAtMs, T0 + 3 * H);
    const stale = plan('b', T0 + 9 * H, [step(1, move, T0 + 11 * H)]);
    assert.equal(keepEarlierStarts(a, stale, 8 * H).steps[0]!.startAtMs, T0 + 11 * H);
    assert.equal(keepEarlierStarts(null, stale, 8 * H), stale);
  });
});
