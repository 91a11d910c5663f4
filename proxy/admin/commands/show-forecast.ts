// SHOW FORECAST [table|partition] [HORIZON h]: point forecast and quantiles per partition and step (latest run).
import { AdminError } from '../admin-session.js';
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';
import { identifier } from './identifiers.js';

export const showForecast: AdminCommand = {
  syntax: 'SHOW FORECAST [table|partition] [HORIZON h]',
  description: 'the latest forecast per partition and step: mean and p10/p50/p90/p99, in load units per second',
  pattern: /^show\s+forecast(?:\s+(?!horizon\b)(\S+))?(?:\s+horizon\s+(\S+))?$/i,
  async run(ctx, m) {
    const target = m[1] === undefined ? null : /^\d+$/.test(m[1]) ? m[1] : identifier(m[1], 'table name');
    let horizon: number | null = null;
    if (m[2] !== undefined) {
      horizon = Number(m[2]);
      if (!Number.isInteger(horizon) || horizon < 1) throw new AdminError('BAD_HORIZON', `HORIZON must be a positive whole number of steps, got ${m[2]}`, { sqlstate: '22023' });
    }
    return autopilotOf(ctx).showForecast(target, horizon);
  },
};
