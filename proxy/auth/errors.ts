// Errors of the authentication area: wrong credentials (28P01) and refused methods (28000).
import { PgtideError, type PgtideErrorOptions } from '../protocol/errors.js';

/** The credentials were wrong. Deliberately vague towards clients, like PG: the reason goes to `detail` for logs only. */
export class AuthenticationError extends PgtideError {
  constructor(message: string, opts: PgtideErrorOptions = {}) {
    super('AUTH_FAILED', message, { sqlstate: '28P01', severity: 'FATAL', ...opts });
  }
}

/** What PG says on any password mismatch, whatever the method. */
export function passwordAuthenticationFailed(user: string, reason?: string): AuthenticationError {
  return new AuthenticationError(`password authentication failed for user "${user}"`, reason === undefined ? {} : { detail: reason });
}
