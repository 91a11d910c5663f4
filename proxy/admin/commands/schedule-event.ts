// SCHEDULE EVENT name AT 'ts' FOR 'duration' [ON table] [EXPECT multiplier]: an announced load change the forecast includes.
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const scheduleEvent: AdminCommand = {
  syntax: "SCHEDULE EVENT name AT 'ts' FOR 'duration' [ON table] [EXPECT multiplier]",
  description: 'announce a campaign or launch; past events of the same name teach its multiplier',
  pattern: /^schedule\s+event\b[\s\S]*$/i,
  run: (ctx, _m, text) => autopilotOf(ctx).scheduleEvent(text),
};
