// The base error of every pgtide area: a stable machine code, a SQLSTATE and a human message.

export type ErrorSeverity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export interface PgtideErrorOptions {
  detail?: string;
  hint?: string;
  severity?: ErrorSeverity;
  cause?: unknown;
}

/**
 * Clients see `sqlstate` + message as an ErrorResponse; logs see `code` and context. Areas
 * subclass it (ProtocolError, CatalogError, RouteError…) so each owns its failure kinds.
 */
export class PgtideError extends Error {
  readonly detail?: string;
  readonly hint?: string;
  readonly severity: ErrorSeverity;

  constructor(readonly code: string, readonly sqlstate: string, message: string, opts: PgtideErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PgtideError';
    this.detail = opts.detail;
    this.hint = opts.hint;
    this.severity = opts.severity ?? 'ERROR';
  }
}

/** Catalog and routing-table changes that were refused. */
export class CatalogError extends PgtideError {
  constructor(code: string, sqlstate: string, message: string, opts?: PgtideErrorOptions) {
    super(code, sqlstate, message, opts);
    this.name = 'CatalogError';
  }
}
