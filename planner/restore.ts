// Restore integration (pure part): user's RESTORE TABLE numbers vs the forecast → chosen values + override log.
//
// Rules, so a DBA can predict them:
// - partitions: the forecast wins when the user asked for fewer than the forecast needs (too few
//   partitions means splits under load right after the restore); more than needed is kept, since
//   an extra partition is only metadata.
// - expected_rows: the forecast wins when it differs from the user's number by more than
//   RESTORE_TOLERANCE either way (it sizes the partitions and the copy schedule).
// - expected_peak: the forecast wins only when it is higher by more than RESTORE_TOLERANCE (a
//   lower forecast would shrink capacity the user asked for before any history exists).
// - A PINNED parameter is never overridden; when the forecast disagrees that is logged too.
// - A parameter the user did not give is taken from the forecast without an override entry.
import { InvalidParameterError } from './errors.js';

/** 25 %: rows and peak estimates closer than this to the user's are not worth overriding. */
export const RESTORE_TOLERANCE = 0.25;

export type RestoreParameter = 'partitions' | 'expected_rows' | 'expected_peak';

export interface RestoreUserParams {
  table?: string;
  partitions?: number;
  expectedRows?: number;
  expectedPeak?: number;
  /** Parameter names the user wrote PINNED after (partitions, expected_rows, expected_peak). */
  pinned: Set<string>;
}

/** What the forecast (or the restore stream's own size) says the table needs. */
export interface RestoreForecastNeeds {
  table: string;
  partitions?: number;
  expectedRows?: number;
  expectedPeak?: number;
  /** Short human explanation of where the numbers come from, quoted in override reasons. */
  basis?: string;
}

export interface OverrideEntry {
  table: string;
  parameter: RestoreParameter;
  userValue: number | null;
  chosenValue: number;
  reason: string;
  pinned: boolean;
}

export interface RestoreResolution {
  table: string;
  partitions?: number;
  expectedRows?: number;
  expectedPeak?: number;
  overrides: OverrideEntry[];
}

const PARAM_NAMES: Record<string, RestoreParameter> = {
  partitions: 'partitions',
  expected_rows: 'expected_rows',
  expectedrows: 'expected_rows',
  expected_peak: 'expected_peak',
  expectedpeak: 'expected_peak',
};

function checkValue(name: string, v: number | undefined, integer: boolean): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v)) || (name === 'partitions' && v < 1)) {
    throw new InvalidParameterError(`RESTORE TABLE: ${name} must be a ${integer ? 'positive integer' : 'non-negative number'}, got ${String(v)}`);
  }
}

/** Partitions needed so the p90 peak load and the expected bytes fit under the split limits. */
export function partitionsNeeded(opts: { peakP90?: number; bytes?: number; partitionMaxLoad: number; partitionMaxBytes: number; splitFill: number }): number {
  const byLoad = opts.peakP90 && opts.peakP90 > 0 ? Math.ceil(opts.peakP90 / (opts.partitionMaxLoad * opts.splitFill)) : 1;
  const bySize = opts.bytes && opts.bytes > 0 ? Math.ceil(opts.bytes / (opts.partitionMaxBytes * opts.splitFill)) : 1;
  return Math.max(1, byLoad, bySize);
}

export function resolveRestoreParameters(user: RestoreUserParams, needs: RestoreForecastNeeds): RestoreResolution {
  const table = user.table ?? needs.table;
  const pinned = new Set<RestoreParameter>();
  for (const p of user.pinned) {
    const name = PARAM_NAMES[p.toLowerCase()];
    if (!name) throw new InvalidParameterError(`RESTORE TABLE ${table}: unknown parameter "${p}" marked PINNED (known: partitions, expected_rows, expected_peak)`);
    pinned.add(name);
  }
  checkValue('partitions', user.partitions, true);
  checkValue('expected_rows', user.expectedRows, true);
  checkValue('expected_peak', user.expectedPeak, false);
  for (const p of pinned) {
    const v = p === 'partitions' ? user.partitions : p === 'expected_rows' ? user.expectedRows : user.expectedPeak;
    if (v === undefined) throw new InvalidParameterError(`RESTORE TABLE ${table}: ${p} is PINNED but has no value`);
  }
  const basis = needs.basis ? ` (${needs.basis})` : '';
  const overrides: OverrideEntry[] = [];
  const usable = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v >= 0;

  function decide(param: RestoreParameter, userValue: number | undefined, forecast: number | undefined, disagrees: (u: number, f: number) => string | null): number | undefined {
    if (userValue === undefined) return usable(forecast) ? forecast : undefined;
    if (!usable(forecast)) return userValue;
    const why = disagrees(userValue, forecast);
    if (!why) return userValue;
    if (pinned.has(param)) {
      overrides.push({ table, parameter: param, userValue, chosenValue: userValue, pinned: true, reason: `kept the PINNED value: ${why}${basis}` });
      return userValue;
    }
    overrides.push({ table, parameter: param, userValue, chosenValue: forecast, pinned: false, reason: `${why}${basis}` });
    return forecast;
  }

  const partitions = decide('partitions', user.partitions, needs.partitions, (u, f) =>
    f > u ? `the forecast needs ${f} partitions to keep each under its load and size limits, ${u} would be split under load right after the restore` : null,
  );
  const expectedRows = decide('expected_rows', user.expectedRows, needs.expectedRows, (u, f) =>
    Math.abs(f - u) > RESTORE_TOLERANCE * Math.max(u, 1) ? `the forecast expects ${f} rows, ${Math.round((Math.abs(f - u) / Math.max(u, 1)) * 100)} % ${f > u ? 'more' : 'fewer'} than the ${u} given` : null,
  );
  const expectedPeak = decide('expected_peak', user.expectedPeak, needs.expectedPeak, (u, f) =>
    f > u * (1 + RESTORE_TOLERANCE) ? `the forecast peak ${f} is ${Math.round(((f - u) / Math.max(u, 1e-9)) * 100)} % above the ${u} given; planning for the lower number would overload shards` : null,
  );
  return {
    table,
    ...(partitions !== undefined ? { partitions } : {}),
    ...(expectedRows !== undefined ? { expectedRows } : {}),
    ...(expectedPeak !== undefined ? { expectedPeak } : {}),
    overrides,
  };
}
