// RESTORE TABLE t WITH (shard_key = col, partitions = n, expected_rows = r, expected_peak = q [PINNED]…): shard a table for a restore, seeded by the forecast.
import { autopilotOf } from '../autopilot-api.js';
import type { AdminCommand } from '../result.js';

export const restoreTable: AdminCommand = {
  syntax: 'RESTORE TABLE t WITH (shard_key = col, partitions = n [PINNED], expected_rows = r [PINNED], expected_peak = q [PINNED], expected_bytes = b)',
  description: 'before pg_restore/COPY of an empty table: shard it with the partitions the forecast needs; overrides are in SHOW OVERRIDES',
  pattern: /^restore\s+table\b[\s\S]*$/i,
  run: (ctx, _m, text) => autopilotOf(ctx).restoreTable(text),
};
