// Base error type of pgtide (stable code + SQLSTATE) and its conversion to wire ErrorResponse fields.

export type PgSeverity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

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

export interface PgtideErrorOptions {
  sqlstate?: string;
  severity?: PgSeverity;
  detail?: string;
  hint?: string;
  cause?: unknown;
}

/**
 * Every error pgtide raises on purpose. `code` is for logs and code (stable, upper snake case);
 * `sqlstate` and `severity` are what a client sees in the ErrorResponse.
 */
export class PgtideError extends Error {
  readonly code: string;
  readonly sqlstate: string;
  severity: PgSeverity;
  detail?: string;
  hint?: string;

  constructor(code: string, message: string, opts: PgtideErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.sqlstate = opts.sqlstate ?? 'XX000';
    this.severity = opts.severity ?? 'ERROR';
    if (opts.detail !== undefined) this.detail = opts.detail;
    if (opts.hint !== undefined) this.hint = opts.hint;
  }
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
