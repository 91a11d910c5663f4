// APPLY PLAN [STEP n]: apply the latest plan (or step n with the steps it depends on).
import { AdminError } from '../admin-session.js';
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const applyPlan: AdminCommand = {
  syntax: 'APPLY PLAN [STEP n]',
  description: 'apply the latest plan, or step n and the steps it depends on',
  pattern: /^apply\s+plan(?:\s+step\s+(\S+))?$/i,
  run(ctx, m) {
    let n: number | null = null;
    if (m[1] !== undefined) {
      n = Number(m[1]);
      if (!Number.isInteger(n) || n < 1) throw new AdminError('BAD_STEP', `STEP must be a positive whole number, got ${m[1]}`, { sqlstate: '22023' });
    }
    return autopilotOf(ctx).applyPlan(n);
  },
};
