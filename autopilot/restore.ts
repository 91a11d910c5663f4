// RESTORE TABLE t WITH (shard_key = col, partitions = n [PINNED], expected_rows = r [PINNED], expected_peak = q [PINNED], expected_bytes = b)
//
// Parsing only (the resolution against the forecast is the planner's resolveRestoreParameters).
// PINNED after a value pins that parameter; a PINNED after the closing parenthesis pins every
// numeric parameter given. expected_peak is in load units per second (the autopilot's unit).
import { AutopilotError } from './errors.js';

export interface RestoreRequest {
  table: string;
  shardKey: string;
  partitions?: number;
  expectedRows?: number;
  expectedPeak?: number;
  expectedBytes?: number;
  pinned: Set<string>;
}

const NUMERIC = ['partitions', 'expected_rows', 'expected_peak', 'expected_bytes'] as const;
const IDENT = /^(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)$/;

function ident(text: string, what: string): string {
  if (!IDENT.test(text)) throw new AutopilotError('BAD_IDENTIFIER', `invalid ${what}: ${JSON.stringify(text)}`, { sqlstate: '42602' });
  if (text.startsWith('"')) return text.slice(1, -1);
  const lower = text.toLowerCase();
  return lower.startsWith('public.') ? lower.slice(7) : lower;
}

export const RESTORE_SYNTAX = 'RESTORE TABLE t WITH (shard_key = col, partitions = n [PINNED], expected_rows = r [PINNED], expected_peak = q [PINNED], expected_bytes = b) [PINNED]';

export function parseRestoreTable(sql: string): RestoreRequest {
  const m = /^\s*restore\s+table\s+(\S+)\s+with\s*\(([^)]*)\)\s*(pinned)?\s*;?\s*$/i.exec(sql);
  if (!m) throw new AutopilotError('SYNTAX', `syntax error: expected ${RESTORE_SYNTAX}`, { sqlstate: '42601' });
  const table = ident(m[1]!, 'table name');
  const req: Partial<RestoreRequest> & { pinned: Set<string> } = { table, pinned: new Set() };
  const given = new Set<string>();
  for (const raw of m[2]!.split(',')) {
    const item = raw.trim();
    if (item === '') throw new AutopilotError('SYNTAX', `syntax error: empty parameter in WITH (…); expected ${RESTORE_SYNTAX}`, { sqlstate: '42601' });
    const p = /^([A-Za-z_]+)\s*=\s*('?)([^'\s]+)\2(?:\s+(pinned))?$/i.exec(item);
    if (!p) throw new AutopilotError('SYNTAX', `syntax error at "${item}": expected name = value [PINNED]`, { sqlstate: '42601' });
    const name = p[1]!.toLowerCase();
    if (given.has(name)) throw new AutopilotError('SYNTAX', `parameter ${name} given twice`, { sqlstate: '42601' });
    given.add(name);
    if (name === 'shard_key') {
      if (p[4]) throw new AutopilotError('SYNTAX', 'shard_key cannot be PINNED (it is never overridden)', { sqlstate: '42601' });
      req.shardKey = ident(p[3]!, 'column name');
      continue;
    }
    if (!(NUMERIC as readonly string[]).includes(name)) {
      throw new AutopilotError('UNKNOWN_PARAMETER', `unknown RESTORE TABLE parameter "${name}"`, { sqlstate: '42704', hint: `known: shard_key, ${NUMERIC.join(', ')}` });
    }
    const v = Number(p[3]);
    if (!Number.isFinite(v) || v < 0 || (name !== 'expected_peak' && !Number.isInteger(v)) || (name === 'partitions' && (v < 1 || v > 4096))) {
      throw new AutopilotError('BAD_PARAMETER', `${name} must be a ${name === 'partitions' ? 'whole number between 1 and 4096' : name === 'expected_peak' ? 'non-negative number' : 'non-negative whole number'}, got "${p[3]}"`, { sqlstate: '22023' });
    }
    if (name === 'partitions') req.partitions = v;
    else if (name === 'expected_rows') req.expectedRows = v;
    else if (name === 'expected_peak') req.expectedPeak = v;
    else req.expectedBytes = v;
    if (p[4] || m[3]) {
      if (name === 'expected_bytes') { if (p[4]) throw new AutopilotError('SYNTAX', 'expected_bytes cannot be PINNED (it only sizes the forecast)', { sqlstate: '42601' }); }
      else req.pinned.add(name);
    }
  }
  if (!req.shardKey) throw new AutopilotError('SYNTAX', `RESTORE TABLE ${table}: shard_key = column is required`, { sqlstate: '42601' });
  return req as RestoreRequest;
}
