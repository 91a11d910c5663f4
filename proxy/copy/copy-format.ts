// The COPY options that decide how rows are framed and fields read (text, CSV, binary), from a route plan.
import { PgtideError } from '../../config/errors.js';

export type CopyFormatKind = 'text' | 'csv' | 'binary';

/** How a COPY data stream is laid out, with Postgres's defaults filled in. */
export interface CopyFormat {
  kind: CopyFormatKind;
  /** Field separator byte: tab (text) or comma (CSV). */
  delimiter: number;
  /** CSV quote byte (default `"`). */
  quote: number;
  /** CSV escape byte (default: the quote). */
  escape: number;
  /** The NULL marker as it appears in the data: `\N` (text) or the empty string (CSV). */
  nullString: string;
  /** HEADER (or HEADER MATCH): the first line is a header, not a row. */
  header: boolean;
}

export class CopyOptionError extends PgtideError {}

const TAB = 0x09;
const COMMA = 0x2c;
const DQUOTE = 0x22;

function oneByte(value: string | boolean | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || Buffer.byteLength(value) !== 1) {
    // Postgres's own wording, so the client sees what it would see without the proxy.
    throw new CopyOptionError('COPY_OPTION', `COPY ${what} must be a single one-byte character`, { sqlstate: '22023' });
  }
  return value.charCodeAt(0);
}

/** The format of a `kind: 'copy'` plan's options (`format`, `delimiter`, `quote`, `escape`, `null`, `header`). */
export function copyFormatOf(kind: CopyFormatKind, options: Readonly<Record<string, string | boolean>>): CopyFormat {
  const csv = kind === 'csv';
  const delimiter = oneByte(options.delimiter, 'delimiter', csv ? COMMA : TAB);
  const quote = oneByte(options.quote, 'quote', DQUOTE);
  const escape = oneByte(options.escape, 'escape', quote);
  const nullOpt = options.null;
  const nullString = typeof nullOpt === 'string' ? nullOpt : csv ? '' : '\\N';
  const h = options.header;
  const header = h === true || (typeof h === 'string' && /^(true|on|1|match)$/i.test(h));
  return { kind, delimiter, quote, escape, nullString, header };
}
