// Planner errors: PgtideError subclasses with a stable code and SQLSTATE 22023 for bad parameters.
import { PgtideError } from '../config/errors.js';

/** Every error the planner raises on purpose. */
export class PlannerError extends PgtideError {}

/** Thresholds or knobs that contradict each other or are out of range (22023 invalid_parameter_value). */
export class InvalidThresholdsError extends PlannerError {
  constructor(message: string) {
    super('PLANNER_INVALID_THRESHOLDS', message, { sqlstate: '22023' });
  }
}

/** A restore or simulator parameter that cannot be used (22023 invalid_parameter_value). */
export class InvalidParameterError extends PlannerError {
  constructor(message: string) {
    super('PLANNER_INVALID_PARAMETER', message, { sqlstate: '22023' });
  }
}
