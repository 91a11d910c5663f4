// SHOW OVERRIDES: every restore parameter the planner overrode (or kept because it was PINNED), and why.
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const showOverrides: AdminCommand = {
  syntax: 'SHOW OVERRIDES',
  description: 'restore parameters the planner overrode or kept pinned: time, table, parameter, user value, chosen value, reason',
  pattern: /^show\s+overrides$/i,
  run: (ctx) => autopilotOf(ctx).showOverrides(),
};
