// SHOW PLAN: the latest plan in words (what, when, why, predicted load with interval, bytes, duration).
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const showPlan: AdminCommand = {
  syntax: 'SHOW PLAN',
  description: 'the latest resharding plan, one step per line, and what it declined to do',
  pattern: /^show\s+plan$/i,
  run: (ctx) => autopilotOf(ctx).showPlan(),
};
