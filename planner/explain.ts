// SHOW PLAN text: one line per step (what, when, why, load, bytes, duration), then what was not done.
import { fmtBytes, fmtDuration, fmtHash, fmtLoad, fmtTime } from './format.js';
import type { Plan, PlanStep } from './types.js';

const START_TEXT: Record<PlanStep['startReason'], string> = {
  'low-window': 'in the forecast low-traffic window',
  'now-urgent': 'now: the limit is crossed already',
  'now-no-window': 'now: no low-traffic window fits before the crossing',
  'now-no-deadline': 'now: nothing is gained by waiting',
  'with-next-step': 'together with the step that needs it',
  'asks-operator': 'needs an operator',
};

/** What the step does, in the words of the admin SQL that would do it by hand. */
export function describeAction(step: PlanStep): string {
  const a = step.action;
  switch (a.kind) {
    case 'split':
      return `SPLIT PARTITION ${a.partitionId} AT ${fmtHash(a.at)} (new piece ${a.newPartitionId < 0 ? `provisional #${-a.newPartitionId}` : a.newPartitionId})`;
    case 'move':
      return `MOVE PARTITION ${a.partitionId < 0 ? `provisional #${-a.partitionId}` : a.partitionId} FROM SHARD ${a.fromShard} TO SHARD ${a.toShard}`;
    case 'merge':
      return `MERGE PARTITIONS ${a.a}, ${a.b}`;
    case 'add-shard':
      return `ADD SHARD ${a.spare} (from the spare pool)`;
    case 'drain-shard':
      return `DRAIN SHARD ${a.shard}`;
    case 'needs-capacity':
      return `NEEDS CAPACITY: ${a.shards} more server${a.shards > 1 ? 's' : ''}`;
  }
}

/** Lines for SHOW PLAN. Step numbers are the ones APPLY PLAN STEP n takes. */
export function explainPlan(plan: Plan): string[] {
  const lines: string[] = [];
  lines.push(`plan ${plan.planId} made at ${fmtTime(plan.createdAtMs)}: ${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'}`);
  if (plan.steps.length === 0) lines.push('nothing to do: every partition and shard stays within its limits for the whole forecast');
  for (const s of plan.steps) {
    const deps = s.dependsOn.length ? `, after step${s.dependsOn.length > 1 ? 's' : ''} ${s.dependsOn.join(', ')}` : '';
    const cost = s.bytesToMove > 0 ? `moves ${fmtBytes(s.bytesToMove)}, about ${fmtDuration(s.estimatedSeconds)}` : s.action.kind === 'needs-capacity' ? 'waits for an operator' : `metadata only, about ${fmtDuration(s.estimatedSeconds)}`;
    const deadline = s.deadlineMs !== undefined && s.deadlineMs > plan.createdAtMs ? `; must finish by ${fmtTime(s.deadlineMs)}` : '';
    lines.push(`step ${s.n}: ${describeAction(s)} — start ${fmtTime(s.startAtMs)} (${START_TEXT[s.startReason]}${deps}); ${cost}${deadline}`);
    lines.push(`  why: ${s.why}`);
    if (s.predicted && s.predicted.p90 > 0 && s.predicted.mean > 0) {
      lines.push(`  predicted: ${fmtLoad(s.predicted.mean)} (80 % interval ${fmtLoad(s.predicted.p10)}–${fmtLoad(s.predicted.p90)}) at ${fmtTime(s.predicted.atMs)} against a limit of ${fmtLoad(s.predicted.limit)}`);
    }
  }
  for (const m of plan.forecastMiss) lines.push(`forecast miss: ${m.message}`);
  for (const r of plan.reasons) lines.push(`not done (${r.code}): ${r.message}`);
  return lines;
}

/** The step APPLY PLAN STEP n names, or undefined; a stale plan id is the caller's error to raise. */
export function planStep(plan: Plan, n: number): PlanStep | undefined {
  return plan.steps.find((s) => s.n === n);
}

/** Steps that must be applied before step n (transitively), in plan order, then n itself. */
export function stepsToApply(plan: Plan, n: number): PlanStep[] {
  const need = new Set<number>();
  const visit = (k: number) => {
    if (need.has(k)) return;
    need.add(k);
    for (const d of planStep(plan, k)?.dependsOn ?? []) visit(d);
  };
  if (!planStep(plan, n)) return [];
  visit(n);
  return plan.steps.filter((s) => need.has(s.n));
}
