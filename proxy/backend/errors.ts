// Errors of the backend area: a server refused us (its own SQLSTATE) or could not be reached (08006).
import { PgtideError, type PgSeverity, type PgtideErrorOptions } from '../protocol/errors.js';

const SEVERITIES = new Set<string>(['ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE', 'DEBUG', 'INFO', 'LOG']);

/** An ErrorResponse from a Postgres server, with its SQLSTATE, message and every other field it sent. */
export class ServerError extends PgtideError {
  /** the raw fields by letter (C, M, D, H, P, W, s, t, n, F, L, R ...) */
  readonly fields: Record<string, string>;

  constructor(fields: Record<string, string>, context?: string) {
    const severity = fields['V'] ?? fields['S'] ?? 'ERROR';
    const opts: PgtideErrorOptions = {
      sqlstate: fields['C'] ?? 'XX000',
      severity: (SEVERITIES.has(severity) ? severity : 'ERROR') as PgSeverity,
    };
    if (fields['D'] !== undefined) opts.detail = fields['D'];
    if (fields['H'] !== undefined) opts.hint = fields['H'];
    super('SERVER_ERROR', context ? `${context}: ${fields['M'] ?? 'unknown error'}` : (fields['M'] ?? 'unknown error'), opts);
    this.fields = fields;
  }
}

/** A server could not be reached, timed out, or went away before the login finished. */
export class ServerConnectionError extends PgtideError {
  constructor(code: 'SERVER_CONNECT_FAILED' | 'SERVER_CONNECT_TIMEOUT' | 'SERVER_CLOSED' | 'SERVER_AUTH_UNSUPPORTED', message: string, opts: PgtideErrorOptions = {}) {
    super(code, message, { sqlstate: code === 'SERVER_AUTH_UNSUPPORTED' ? '08004' : '08006', ...opts });
  }
}
