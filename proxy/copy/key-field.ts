// Reads one field (the shard key) out of a framed COPY row in text or CSV format, as Postgres would.
import type { CopyFormat } from './copy-format.js';

const NL = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;

/** Field `index` was past the end of the row: Postgres's "missing data for column". */
export const MISSING = Symbol('missing');

/** End of a row's content, without its \n or \r\n. */
function contentEnd(row: Buffer): number {
  let end = row.length;
  if (end > 0 && row[end - 1] === NL) end--;
  if (end > 0 && row[end - 1] === CR) end--;
  return end;
}

/**
 * The value of field `index` (0-based) of a row: its text, null for the NULL marker, or MISSING.
 * Only the fields up to `index` are scanned.
 */
export function readField(row: Buffer, index: number, format: CopyFormat): string | null | typeof MISSING {
  return format.kind === 'csv' ? csvField(row, index, format) : textField(row, index, format);
}

function textField(row: Buffer, index: number, format: CopyFormat): string | null | typeof MISSING {
  const end = contentEnd(row);
  const delim = format.delimiter;
  let start = 0;
  for (let f = 0; ; f++) {
    // Find this field's end: the next delimiter not escaped by a backslash.
    let i = start;
    let escaped = false;
    while (i < end) {
      const c = row[i]!;
      if (c === BACKSLASH) {
        escaped = true;
        i += 2;
        continue;
      }
      if (c === delim) break;
      i++;
    }
    if (i > end) i = end;
    if (f === index) {
      const raw = row.toString('utf8', start, i);
      if (raw === format.nullString) return null;
      return escaped ? unescapeText(raw) : raw;
    }
    if (i >= end) return MISSING;
    start = i + 1;
  }
}

const SIMPLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** Text-format backslash escapes: \b \f \n \r \t \v, octal \ooo, hex \xhh, else the character itself. */
export function unescapeText(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const d = s[++i]!;
    if (d >= '0' && d <= '7') {
      let v = d.charCodeAt(0) - 48;
      for (let k = 0; k < 2 && i + 1 < s.length && s[i + 1]! >= '0' && s[i + 1]! <= '7'; k++) v = v * 8 + (s.charCodeAt(++i) - 48);
      out += String.fromCharCode(v & 0xff);
    } else if (d === 'x' && i + 1 < s.length && /[0-9a-fA-F]/.test(s[i + 1]!)) {
      let h = s[++i]!;
      if (i + 1 < s.length && /[0-9a-fA-F]/.test(s[i + 1]!)) h += s[++i]!;
      out += String.fromCharCode(parseInt(h, 16));
    } else {
      out += SIMPLE_ESCAPES[d] ?? d;
    }
  }
  return out;
}

function csvField(row: Buffer, index: number, format: CopyFormat): string | null | typeof MISSING {
  const end = contentEnd(row);
  const { delimiter: delim, quote, escape } = format;
  let i = 0;
  for (let f = 0; ; f++) {
    let quoted = false;
    let value = '';
    let segStart = i;
    let inQuote = false;
    while (i < end) {
      const c = row[i]!;
      if (inQuote) {
        if (c === escape && i + 1 < end && (row[i + 1] === quote || row[i + 1] === escape) && (escape !== quote || row[i + 1] === quote)) {
          // An escaped quote (or escape): keep the second byte.
          value += row.toString('utf8', segStart, i);
          segStart = i + 1;
          i += 2;
          continue;
        }
        if (c === quote) {
          value += row.toString('utf8', segStart, i);
          inQuote = false;
          segStart = ++i;
          continue;
        }
        i++;
        continue;
      }
      if (c === delim) break;
      if (c === quote) {
        value += row.toString('utf8', segStart, i);
        quoted = true;
        inQuote = true;
        segStart = ++i;
        continue;
      }
      i++;
    }
    if (f === index) {
      value += row.toString('utf8', segStart, Math.min(i, end));
      // Only an unquoted field matching the NULL string is NULL ("" stays an empty string).
      if (!quoted && value === format.nullString) return null;
      return value;
    }
    if (i >= end) return MISSING;
    i++;
  }
}
