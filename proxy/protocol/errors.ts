// Base error type of pgtide (stable code + SQLSTATE) and its conversion to wire ErrorResponse fields.

// One base class for the whole project: config/errors.ts defines it (same shape as the brief asked
// for here), and a second copy would make `instanceof PgtideError` false across areas.
import { PgtideError, type PgSeverity, type PgtideErrorOptions } from '../../config/errors.js';

export { PgtideError, type PgSeverity, type PgtideErrorOptions };

/** The fields of an ErrorResponse / NoticeResponse the proxy writes itself. */
export interface PgErrorFields {
  severity: PgSeverity;
  /** SQLSTATE, five characters */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query string */
  position?: number;
  where?: string;
  routine?: string;
}

/**
 * The peer broke the wire protocol. FATAL by default because after a framing error the byte
 * stream cannot be trusted any more; PG closes the connection too.
 */
export class ProtocolError extends PgtideError {
  constructor(message: string, opts: PgtideErrorOptions = {}) {
    super('PROTOCOL_VIOLATION', message, { sqlstate: '08P01', severity: 'FATAL', ...opts });
  }
}

/** Any thrown value as ErrorResponse fields; errors we did not raise on purpose are internal (XX000). */
export function toErrorFields(err: unknown): PgErrorFields {
  if (err instanceof PgtideError) {
    const f: PgErrorFields = { severity: err.severity, code: err.sqlstate, message: err.message };
    if (err.detail !== undefined) f.detail = err.detail;
    if (err.hint !== undefined) f.hint = err.hint;
    return f;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { severity: 'ERROR', code: 'XX000', message: message || 'internal error' };
}
