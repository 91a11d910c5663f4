// A re-plan does not postpone a scale-down step that an earlier plan already scheduled.
//
// The planner is stateless: every run picks each job's start afresh in the forecast's quietest
// window. A scale-down step (a merge and the move that brings its pieces together) has no
// deadline, so on a flat night the quietest step is wherever the forecast's wiggles put it, and
// each re-plan drew a new one further ahead: the step never came due, and once the next morning
// entered the horizon the merge was dropped altogether. So the autopilot keeps, for a step that
// the previous plan also had (same action, same range), the earlier of the two starts. Steps with
// a deadline are left alone: their latest start is anchored to the deadline, not to now.
import type { Plan, PlanStep } from '../planner/index.js';

function sameStep(a: PlanStep, b: PlanStep): boolean {
  if (a.action.kind !== b.action.kind || a.range.lo !== b.range.lo || a.range.hi !== b.range.hi) return false;
  const x = a.action;
  const y = b.action;
  if (x.kind === 'move' && y.kind === 'move') return x.partitionId === y.partitionId && x.toShard === y.toShard;
  if (x.kind === 'merge' && y.kind === 'merge') return x.a === y.a && x.b === y.b;
  return false;
}

/**
 * The next plan with the earlier start kept for scale-down steps the previous plan also had; a
 * previous plan older than `maxAgeMs` (its horizon: it no longer says anything) is ignored.
 */
export function keepEarlierStarts(previous: Plan | null, next: Plan, maxAgeMs: number): Plan {
  if (!previous || next.createdAtMs - previous.createdAtMs > maxAgeMs) return next;
  const steps = next.steps.map((s) => {
    if (s.trigger !== 'scale-down' || s.deadlineMs !== undefined || (s.action.kind !== 'move' && s.action.kind !== 'merge')) return s;
    const before = previous.steps.find((p) => p.trigger === 'scale-down' && sameStep(p, s));
    if (!before || before.startAtMs >= s.startAtMs) return s;
    const startAtMs = Math.max(before.startAtMs, next.createdAtMs);
    return { ...s, startAtMs, why: `${s.why} Start kept from plan ${previous.planId} (re-planning does not postpone a step without deadline).` };
  });
  return { ...next, steps };
}
