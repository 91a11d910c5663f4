// SET AUTOPILOT off | recommend | auto, and SET AUTOPILOT setting = value (thresholds, clock, feed): persisted in the catalog.
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const setAutopilot: AdminCommand = {
  syntax: 'SET AUTOPILOT off | recommend | auto | SET AUTOPILOT setting = value',
  description: 'autopilot mode (off: forecasts only; recommend: plans; auto: applies due steps) or one of its settings (SHOW AUTOPILOT lists them)',
  pattern: /^set\s+autopilot\s+(?:(off|recommend|auto)|([a-z_]+)\s*(?:=|\s+to\s+)\s*(.+?))$/i,
  run(ctx, m) {
    const a = autopilotOf(ctx);
    if (m[1] !== undefined) return a.setMode(m[1].toLowerCase() as 'off' | 'recommend' | 'auto');
    return a.set(m[2]!, m[3]!);
  },
};
