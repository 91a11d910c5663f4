// Identifier checks shared by admin commands (names as a DBA types them: plain or "quoted").
import { AdminError } from '../admin-session.js';

const PLAIN = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

/** A table or column name: unquoted names fold to lower case, as in SQL. */
export function identifier(text: string, what: string): string {
  if (/^"[^"]+"$/.test(text)) return text.slice(1, -1);
  if (!PLAIN.test(text)) throw new AdminError('BAD_IDENTIFIER', `invalid ${what}: ${JSON.stringify(text)}`, { sqlstate: '42602' });
  const lower = text.toLowerCase();
  return lower.startsWith('public.') ? lower.slice(7) : lower;
}
