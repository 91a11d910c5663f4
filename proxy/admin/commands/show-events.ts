// SHOW EVENTS: scheduled events (admin and HTTP feed) the forecast takes into account.
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const showEvents: AdminCommand = {
  syntax: 'SHOW EVENTS',
  description: 'scheduled events from SCHEDULE EVENT and the event feed',
  pattern: /^show\s+events$/i,
  run: (ctx) => autopilotOf(ctx).showEvents(),
};
