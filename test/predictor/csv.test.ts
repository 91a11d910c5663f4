// Tests the CLI's CSV reader: grid detection, gaps, and errors naming row and column.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CsvInputError } from '../../predictor/errors.js';
import { parseCsv } from '../../predictor/csv.js';

test('a regular CSV with a missing row and empty cells', () => {
  const t = parseCsv('time,a,b\n2025-01-01T00:00:00Z,1,2\n2025-01-01T01:00:00Z,,3\n2025-01-01T03:00:00Z,4,NaN\n');
  assert.equal(t.stepMs, 3_600_000);
  assert.deepEqual(t.columns, ['a', 'b']);
  assert.deepEqual(t.values, [[1, null, null, 4], [2, 3, null, null]]);
  assert.equal(t.insertedRows, 1);
});

test('a bad timestamp names its row and the time column', () => {
  assert.throws(() => parseCsv('ts,a\n2025-01-01T00:00:00Z,1\nyesterday,2\n'),
    (e: unknown) => e instanceof CsvInputError && e.row === 3 && e.column === 'ts' && /row 3, column "ts": invalid timestamp "yesterday"/.test(e.message));
});

test('a non-numeric cell names its row and column', () => {
  assert.throws(() => parseCsv('ts,a,b\n2025-01-01T00:00:00Z,1,2\n2025-01-01T01:00:00Z,3,12abc\n'),
    (e: unknown) => e instanceof CsvInputError && e.row === 3 && e.column === 'b' && /not a number: "12abc"/.test(e.message));
});

test('out-of-order rows and ragged rows are errors', () => {
  assert.throws(() => parseCsv('ts,a\n2025-01-01T01:00:00Z,1\n2025-01-01T00:00:00Z,2\n'), /row 3.*not after/);
  assert.throws(() => parseCsv('ts,a\n2025-01-01T01:00:00Z,1,5\n'), /row 2: expected 2 cells/);
});
