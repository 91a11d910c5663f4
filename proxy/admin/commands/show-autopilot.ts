// SHOW AUTOPILOT: mode, settings, the last forecast run and the autopilot's log (what it did not do, and why).
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const showAutopilot: AdminCommand = {
  syntax: 'SHOW AUTOPILOT',
  description: 'autopilot mode and settings, the last run, and its log',
  pattern: /^show\s+autopilot$/i,
  run: (ctx) => autopilotOf(ctx).showAutopilot(),
};
