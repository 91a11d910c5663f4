// The move job's state machine: the states, the allowed transitions, and which states are terminal.

/** Every state a job can be in; the string is what the catalog stores and SHOW JOBS prints. */
export enum JobState {
  Planned = 'planned',
  Preparing = 'preparing',
  Copying = 'copying',
  CatchingUp = 'catching_up',
  Cutover = 'cutover',
  Cleanup = 'cleanup',
  Done = 'done',
  Failed = 'failed',
  /** Cancel requested: the rollback is under way (idempotent, resumable). */
  Cancelled = 'cancelled',
  /** Rollback finished: the source owns everything, the target holds nothing of the range. */
  RolledBack = 'rolled_back',
  Paused = 'paused',
}

/**
 * The only edges a job may take. `cutover → catching_up` is the abort edge (the cutover ran out
 * of budget or failed before the point of no return). Once in `cleanup` a job only goes forward:
 * the routing already names the target, so it cannot be cancelled any more.
 */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  [JobState.Planned]: [JobState.Preparing, JobState.Paused, JobState.Cancelled, JobState.Failed],
  [JobState.Preparing]: [JobState.Copying, JobState.Paused, JobState.Cancelled, JobState.Failed],
  [JobState.Copying]: [JobState.CatchingUp, JobState.Paused, JobState.Cancelled, JobState.Failed],
  [JobState.CatchingUp]: [JobState.Cutover, JobState.Paused, JobState.Cancelled, JobState.Failed],
  [JobState.Cutover]: [JobState.Cleanup, JobState.CatchingUp, JobState.Cancelled, JobState.Failed],
  [JobState.Cleanup]: [JobState.Done, JobState.Paused],
  [JobState.Paused]: [JobState.Planned, JobState.Preparing, JobState.Copying, JobState.CatchingUp, JobState.Cleanup, JobState.Cancelled],
  [JobState.Failed]: [JobState.Cancelled, JobState.Planned, JobState.Preparing, JobState.Copying, JobState.CatchingUp, JobState.Cleanup],
  [JobState.Cancelled]: [JobState.RolledBack],
  [JobState.Done]: [],
  [JobState.RolledBack]: [],
};

/** States a job never leaves. */
export const TERMINAL_STATES: readonly JobState[] = [JobState.Done, JobState.RolledBack];

/** States in which the job still claims its partition (a second job on it is refused). */
export function isActive(s: JobState): boolean {
  return !TERMINAL_STATES.includes(s);
}

/** States after the point of no return: the routing already names the target. */
export function pastPointOfNoReturn(s: JobState): boolean {
  return s === JobState.Cleanup || s === JobState.Done;
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function parseJobState(s: string): JobState {
  const v = Object.values(JobState).find((x) => x === s);
  if (!v) throw new Error(`unknown job state ${JSON.stringify(s)}`);
  return v;
}
