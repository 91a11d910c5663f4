// CSV input of the offline CLI: first column an ISO timestamp at a regular interval, then one series per column.

import { CsvInputError } from './errors.js';
import { parseTimestamp } from './events.js';

export interface CsvTable {
  timeColumn: string;
  columns: string[];
  times: number[];
  /** values[c][row]; an empty cell is null (a missing interval). */
  values: (number | null)[][];
  stepMs: number;
  /** Rows missing from the regular grid that were inserted as nulls. */
  insertedRows: number;
}

/** Splits one CSV line honouring double quotes ("" escapes a quote). */
function splitLine(line: string): string[] {
  const out: string[] = [];
  let cur = '', q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (q) {
      if (ch === '"') { if (line[i + 1] === '"') { cur += '"'; i++; } else q = false; }
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { out.push(cur); cur = ''; }
    else cur += ch;
  }
  out.push(cur);
  return out;
}

const MISSING = new Set(['', 'na', 'nan', 'null', 'n/a', '-']);

/**
 * Parses the CSV text. Rows are numbered as in a spreadsheet: the header is row 1. A bad timestamp
 * or a non-numeric cell throws CsvInputError naming the row and the column. The interval is the
 * most common difference between consecutive timestamps; rows absent from the grid become nulls,
 * rows off the grid or out of order are errors.
 */
export function parseCsv(text: string): CsvTable {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) throw new CsvInputError('input is empty: expected a header row', 1, '');
  const header = splitLine(lines[0]!.replace(/^\uFEFF/, '')).map((h) => h.trim());
  if (header.length < 2) throw new CsvInputError('header needs a timestamp column and at least one series column', 1, header[0] ?? '');
  const timeColumn = header[0]!;
  const columns = header.slice(1);
  const seen = new Set<string>();
  for (const c of columns) {
    if (c === '') throw new CsvInputError('empty column name in header', 1, c);
    if (seen.has(c)) throw new CsvInputError(`duplicate column name "${c}"`, 1, c);
    seen.add(c);
  }
  const times: number[] = [];
  const rows: (number | null)[][] = [];
  const rowNos: number[] = [];
  for (let r = 1; r < lines.length; r++) {
    const rowNo = r + 1;
    const line = lines[r]!;
    if (line.trim() === '') continue;
    const cells = splitLine(line);
    if (cells.length !== header.length) {
      throw new CsvInputError(`row ${rowNo}: expected ${header.length} cells, found ${cells.length}`, rowNo, cells.length < header.length ? header[cells.length]! : header[header.length - 1]!);
    }
    const t = parseTimestamp(cells[0]!);
    if (!Number.isFinite(t)) throw new CsvInputError(`row ${rowNo}, column "${timeColumn}": invalid timestamp "${cells[0]}"`, rowNo, timeColumn);
    const vals: (number | null)[] = [];
    for (let c = 1; c < cells.length; c++) {
      const raw = cells[c]!.trim();
      if (MISSING.has(raw.toLowerCase())) { vals.push(null); continue; }
      const v = Number(raw);
      if (!Number.isFinite(v) || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) {
        throw new CsvInputError(`row ${rowNo}, column "${header[c]}": not a number: "${cells[c]}"`, rowNo, header[c]!);
      }
      vals.push(v);
    }
    times.push(t);
    rows.push(vals);
    rowNos.push(rowNo);
  }
  if (times.length === 0) throw new CsvInputError('no data rows', 2, timeColumn);
  // Interval: the most common positive difference.
  const diffs = new Map<number, number>();
  for (let i = 1; i < times.length; i++) {
    const d = times[i]! - times[i - 1]!;
    if (d <= 0) throw new CsvInputError(`row ${rowNos[i]}, column "${timeColumn}": timestamp not after the previous row`, rowNos[i]!, timeColumn);
    diffs.set(d, (diffs.get(d) ?? 0) + 1);
  }
  let stepMs = 3_600_000, best = -1;
  for (const [d, c] of diffs) if (c > best || (c === best && d < stepMs)) { stepMs = d; best = c; }
  const out: (number | null)[][] = columns.map(() => []);
  const grid: number[] = [];
  let inserted = 0;
  for (let i = 0; i < times.length; i++) {
    if (i > 0) {
      const gap = times[i]! - times[i - 1]!;
      if (gap % stepMs !== 0) throw new CsvInputError(`row ${rowNos[i]}, column "${timeColumn}": timestamp off the ${stepMs / 1000}s grid`, rowNos[i]!, timeColumn);
      for (let k = 1; k < gap / stepMs; k++) {
        grid.push(times[i - 1]! + k * stepMs);
        out.forEach((col) => col.push(null));
        inserted++;
      }
    }
    grid.push(times[i]!);
    rows[i]!.forEach((v, c) => out[c]!.push(v));
  }
  return { timeColumn, columns, times: grid, values: out, stepMs, insertedRows: inserted };
}

