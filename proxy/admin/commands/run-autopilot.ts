// RUN AUTOPILOT: forecast (and plan, and in auto mode apply) now instead of waiting for the clock.
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const runAutopilot: AdminCommand = {
  syntax: 'RUN AUTOPILOT',
  description: 'forecast now, then plan (recommend, auto) and apply due steps (auto)',
  pattern: /^run\s+autopilot$/i,
  run: (ctx) => autopilotOf(ctx).runNow(),
};
