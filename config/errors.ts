// The base error of every pgtide area: a stable machine code, a SQLSTATE and a human message.

export type PgSeverity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export interface PgtideErrorOptions {
  sqlstate?: string;
  severity?: PgSeverity;
  detail?: string;
  hint?: string;
  cause?: unknown;
}

/**
 * Every error pgtide raises on purpose. `code` is for logs and code (stable, upper snake case);
 * `sqlstate` and `severity` are what a client sees in the ErrorResponse. Areas subclass it
 * (ProtocolError, CatalogError, RouteError…) so each owns its failure kinds.
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

/** Catalog and routing-table changes that were refused. */
export class CatalogError extends PgtideError {}
