// Sizes as a DBA types them in admin commands ('50 GB', 512MB, 1234), read like Postgres's pg_size_bytes.
import { PgtideError } from '../../config/errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, byte: 1, bytes: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

/** Bytes (units of 1024, quotes optional), or null for none / unlimited / default; 22023 otherwise. */
export function parseSize(text: string): number | null {
  const t = text.trim().replace(/^'(.*)'$/s, '$1').trim();
  if (/^(none|unlimited|default)$/i.test(t)) return null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(t);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new PgtideError('BAD_SIZE', `invalid size: ${JSON.stringify(t)}`, { sqlstate: '22023', hint: "a number of bytes with an optional unit (kB, MB, GB, TB), e.g. '50 GB', or none" });
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new PgtideError('BAD_SIZE', `a size must be above zero and below 8 PB, got ${JSON.stringify(t)}`, { sqlstate: '22023' });
  return bytes;
}
