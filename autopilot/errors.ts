// Autopilot errors: PgtideError with a stable code and the SQLSTATE a DBA sees in the admin console.
import { PgtideError } from '../config/errors.js';

export class AutopilotError extends PgtideError {}
