// `pgtide simulate`: replays a CSV load trace through the simulator and prints each policy's score as JSON.
//
//   pgtide simulate --trace FILE.csv --shard-capacity C [--train-until TIMESTAMP]
//                   [--policies static,reactive,predictive,oracle] [--spare-shards N]
//                   [--partition-bytes B] [--mover-throughput BYTES_PER_S] [--cutover-ms MS] [--slo-ms MS]
//
// CSV: an optional header row; then one row per interval: an ISO timestamp (regular interval),
// then one column per partition holding its load in the unit of C. Rows up to --train-until
// (default: the first half) are history for the forecaster; the rest is replayed. Each partition
// is modelled as CELLS_PER_COLUMN equal cells with its load spread evenly, so splits are possible.
// Bad input names the row and column and exits with 2; stdout then stays empty.
import { readFile } from 'node:fs/promises';
import { seasonalNaiveConformal } from './baseline-forecast.js';
import { POLICY_NAMES, simulate, type ClusterModel, type PolicyName, type SimTrace } from './simulate.js';

/** Each CSV column becomes this many cells (the finest a split can cut it). */
export const CELLS_PER_COLUMN = 8;
export const DEFAULT_PARTITION_BYTES = 8e9;
export const DEFAULT_MOVER_BYTES_PER_SEC = 100e6;

const USAGE = `usage: pgtide simulate --trace FILE.csv --shard-capacity C [--train-until TIMESTAMP]
                       [--policies static,reactive,predictive,oracle] [--spare-shards N]
                       [--partition-bytes B] [--mover-throughput BYTES_PER_S] [--cutover-ms MS] [--slo-ms MS]
`;

class CliError extends Error {}

interface Args {
  trace: string;
  capacity: number;
  trainUntil?: number;
  policies: PolicyName[];
  spares?: number;
  partitionBytes: number;
  mover: number;
  cutoverMs: number;
  sloMs: number;
}

function parseArgs(argv: string[]): Args | 'help' {
  const vals = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return 'help';
    if (!a.startsWith('--')) throw new CliError(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new CliError(`--${name} needs a value`);
    vals.set(name, value);
  }
  const known = new Set(['trace', 'shard-capacity', 'train-until', 'policies', 'spare-shards', 'partition-bytes', 'mover-throughput', 'cutover-ms', 'slo-ms']);
  for (const k of vals.keys()) if (!known.has(k)) throw new CliError(`unknown option --${k}`);
  const num = (name: string, def?: number, integer = false): number => {
    const v = vals.get(name);
    if (v === undefined) {
      if (def === undefined) throw new CliError(`--${name} is required`);
      return def;
    }
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) throw new CliError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${v}"`);
    return x;
  };
  const trace = vals.get('trace');
  if (!trace) throw new CliError('--trace is required');
  let trainUntil: number | undefined;
  if (vals.has('train-until')) {
    trainUntil = Date.parse(vals.get('train-until')!);
    if (!Number.isFinite(trainUntil)) throw new CliError(`--train-until must be an ISO timestamp, got "${vals.get('train-until')}"`);
  }
  const policies = (vals.get('policies') ?? POLICY_NAMES.join(','))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of policies) if (!(POLICY_NAMES as string[]).includes(p)) throw new CliError(`unknown policy "${p}" (known: ${POLICY_NAMES.join(', ')})`);
  if (policies.length === 0) throw new CliError('--policies names no policy');
  return {
    trace,
    capacity: num('shard-capacity'),
    trainUntil,
    policies: policies as PolicyName[],
    spares: vals.has('spare-shards') ? num('spare-shards', undefined, true) : undefined,
    partitionBytes: num('partition-bytes', DEFAULT_PARTITION_BYTES),
    mover: num('mover-throughput', DEFAULT_MOVER_BYTES_PER_SEC),
    cutoverMs: num('cutover-ms', 100),
    sloMs: num('slo-ms', 50),
  };
}

/** Splits one CSV line, honouring double quotes. */
function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim());
}

export interface ParsedTrace {
  names: string[];
  times: number[];
  /** rows[r][p]: load of partition p at row r. */
  rows: number[][];
  intervalSeconds: number;
}

/** Parses the trace CSV; errors say `FILE row R, column C ("name"): …` with 1-based rows and columns. */
export function parseTraceCsv(text: string, file = 'trace'): ParsedTrace {
  const lines = text.split(/\r?\n/);
  const rows: number[][] = [];
  const times: number[] = [];
  let names: string[] | undefined;
  let width = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) continue;
    const cells = splitCsv(line);
    const rowNo = i + 1;
    const ts = Date.parse(cells[0]!);
    if (!Number.isFinite(ts)) {
      if (names === undefined && rows.length === 0) {
        names = cells.slice(1);
        width = cells.length;
        continue;
      }
      throw new CliError(`${file} row ${rowNo}, column 1: "${cells[0]}" is not an ISO timestamp`);
    }
    if (width < 0) width = cells.length;
    if (cells.length !== width) throw new CliError(`${file} row ${rowNo}: ${cells.length} columns, expected ${width} like the first row`);
    if (width < 2) throw new CliError(`${file} row ${rowNo}: needs a timestamp and at least one partition column`);
    const values: number[] = [];
    for (let c = 1; c < cells.length; c++) {
      const raw = cells[c]!;
      const v = raw === '' ? NaN : Number(raw);
      const col = names?.[c - 1] ? ` ("${names[c - 1]}")` : '';
      if (!Number.isFinite(v)) throw new CliError(`${file} row ${rowNo}, column ${c + 1}${col}: "${raw}" is not a number`);
      if (v < 0) throw new CliError(`${file} row ${rowNo}, column ${c + 1}${col}: load ${raw} is negative`);
      values.push(v);
    }
    if (times.length >= 1) {
      const step = times.length >= 2 ? times[1]! - times[0]! : ts - times[0]!;
      if (step <= 0) throw new CliError(`${file} row ${rowNo}, column 1: timestamp ${cells[0]} does not come after the previous row`);
      if (ts - times[times.length - 1]! !== step) throw new CliError(`${file} row ${rowNo}, column 1: timestamp ${cells[0]} breaks the regular ${step / 1000} s interval`);
    }
    times.push(ts);
    rows.push(values);
  }
  if (rows.length < 2) throw new CliError(`${file}: needs at least two data rows, found ${rows.length}`);
  const n = rows[0]!.length;
  return { names: names ?? Array.from({ length: n }, (_, i) => `p${i + 1}`), times, rows, intervalSeconds: (times[1]! - times[0]!) / 1000 };
}

/** Builds the simulator trace from a parsed CSV: each column becomes CELLS_PER_COLUMN even cells. */
export function traceFromCsv(p: ParsedTrace, trainRows: number, partitionBytes: number): SimTrace {
  const cols = p.rows[0]!.length;
  const cells = cols * CELLS_PER_COLUMN;
  const load = new Float32Array(p.rows.length * cells);
  p.rows.forEach((row, t) => {
    for (let c = 0; c < cols; c++) {
      for (let k = 0; k < CELLS_PER_COLUMN; k++) load[t * cells + c * CELLS_PER_COLUMN + k] = row[c]! / CELLS_PER_COLUMN;
    }
  });
  return {
    startMs: p.times[0]!,
    tickSeconds: p.intervalSeconds,
    ticks: p.rows.length,
    cells,
    load,
    cellBytes: new Float64Array(cells).fill(partitionBytes / CELLS_PER_COLUMN),
    events: [],
    trainTicks: trainRows,
    initialPartitions: cols,
  };
}

/** The cluster the CLI replays against, scaled to the given shard capacity. */
export function cliClusterModel(a: { capacity: number; initialShards: number; spares: number; mover: number; cutoverMs: number; sloMs: number; tickSeconds: number }): ClusterModel {
  const baseP99Ms = Math.min(5, a.sloMs / 10);
  return {
    shardCapacity: a.capacity,
    initialShards: a.initialShards,
    spareShards: a.spares,
    baseP99Ms,
    sloP99Ms: a.sloMs,
    moverBytesPerSec: a.mover,
    cutoverSeconds: a.cutoverMs / 1000,
    moverOverhead: 0.05,
    thresholds: {
      partitionMaxLoad: 0.3 * a.capacity,
      partitionMinLoad: 0.06 * a.capacity,
      shardMaxUtilization: 0.7,
      shardMinUtilization: 0.4,
      partitionMaxBytes: 64e9,
      targetP99Ms: a.sloMs,
      baseP99Ms,
    },
    horizonSeconds: 12 * 3600,
    forecastStepSeconds: a.tickSeconds * Math.max(1, Math.round(900 / a.tickSeconds)),
    thrashWindowSeconds: 2 * 3600,
  };
}

export async function runSimulateCli(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  try {
    const args = parseArgs(argv);
    if (args === 'help') {
      out.write(USAGE);
      return 0;
    }
    let text: string;
    try {
      text = await readFile(args.trace, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${args.trace}: ${(e as Error).message}`);
    }
    const parsed = parseTraceCsv(text, args.trace);
    let trainRows = Math.floor(parsed.rows.length / 2);
    if (args.trainUntil !== undefined) {
      trainRows = parsed.times.filter((t) => t <= args.trainUntil!).length;
      if (trainRows === 0) throw new CliError(`--train-until ${new Date(args.trainUntil).toISOString()} is before the first row (${new Date(parsed.times[0]!).toISOString()})`);
      if (trainRows >= parsed.rows.length) throw new CliError(`--train-until ${new Date(args.trainUntil).toISOString()} leaves no rows to replay (last row ${new Date(parsed.times[parsed.times.length - 1]!).toISOString()})`);
    }
    trainRows = Math.max(1, trainRows);
    const trace = traceFromCsv(parsed, trainRows, args.partitionBytes);
    const totals = parsed.rows.map((r) => r.reduce((a, b) => a + b, 0));
    const peak = Math.max(...totals);
    const model = cliClusterModel({
      capacity: args.capacity,
      initialShards: Math.max(1, Math.ceil(totals[trainRows]! / (0.7 * args.capacity))),
      spares: args.spares ?? Math.max(2, 2 * Math.ceil(peak / (0.7 * args.capacity))),
      mover: args.mover,
      cutoverMs: args.cutoverMs,
      sloMs: args.sloMs,
      tickSeconds: parsed.intervalSeconds,
    });
    // The real predictor plugs in here through the composition root; the baseline keeps the CLI self-contained.
    const results = simulate(trace, model, { policies: args.policies, predictive: (h) => seasonalNaiveConformal(h) });
    const policies: Record<string, object> = {};
    for (const [name, r] of Object.entries(results)) {
      policies[name] = {
        slo_violation_seconds: r.slo_violation_seconds,
        server_hours: r.server_hours,
        partition_hours: r.partition_hours,
        bytes_moved: r.bytes_moved,
        jobs: r.jobs,
        thrash: r.thrash,
      };
    }
    out.write(JSON.stringify({ policies }) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof CliError) {
      err.write(`pgtide simulate: ${e.message}\n`);
      if (/required|unknown option|needs a value|unexpected argument/.test(e.message)) err.write(USAGE);
      return 2;
    }
    throw e;
  }
}
