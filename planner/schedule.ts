// Scheduler: picks each job's start in the forecast's low-traffic window, finishing before the crossing.
//
// A job that must finish before a predicted crossing has a latest start: crossing − safety margin −
// the time the moves queued ahead of it need (the executor runs maxConcurrentMoves at once, so a
// batch of moves needs Σ duration / concurrency). Between now and that latest start, the scheduler
// picks the start whose run overlaps the least forecast cluster load (copying competes with
// foreground queries and the mover throttles itself when shards are busy), preferring the earliest
// of the starts within LOW_WINDOW_TOLERANCE of the best so a job does not wait for nothing (jobs
// that fill a new server prefer the latest, see LATEST_WINDOW_TOLERANCE). If the
// latest start is already past, the job starts now and the plan says why.
// A start is also as good as the quietest when the difference is within the forecast's own
// uncertainty (half the cluster's 80 % interval): on a flat night the quietest step is chosen by
// noise, and with every re-plan a fresh draw put it further ahead, so a job without a deadline
// (a merge's move) was postponed until the morning entered the horizon and dropped it.

/** Starts whose load is within 5 % of the quietest are equally good; the earliest wins. */
export const LOW_WINDOW_TOLERANCE = 0.05;
/**
 * Jobs that fill a newly added server take the *latest* start whose load is within 50 % of the
 * quietest: the server costs from the moment it is added, and the load is still low then.
 */
export const LATEST_WINDOW_TOLERANCE = 0.5;
/** 1 h: a "latest" start still leaves this much before the latest safe start. */
export const JIT_BUFFER_SECONDS = 3600;

export interface Grid {
  nowMs: number;
  stepMs: number;
  steps: number;
}

export interface ScheduleResult {
  startAtMs: number;
  reason: 'low-window' | 'now-no-window' | 'now-no-deadline';
  latestStartMs: number;
}

/** Average of `load` over the grid steps that [startMs, startMs + durationMs) touches. */
function averageLoad(grid: Grid, load: Float64Array, startMs: number, durationMs: number): number {
  const first = Math.max(0, Math.floor((startMs - grid.nowMs) / grid.stepMs));
  const last = Math.min(grid.steps - 1, Math.floor((startMs + Math.max(0, durationMs - 1) - grid.nowMs) / grid.stepMs));
  let sum = 0;
  let n = 0;
  for (let i = first; i <= last; i++) {
    sum += load[i]!;
    n++;
  }
  return n ? sum / n : load[grid.steps - 1] ?? 0;
}

/**
 * Picks a start in [max(now, earliestStart), latestStart] at grid resolution. `latestStartMs` undefined means "no
 * deadline": the window is the whole horizon minus the job's duration.
 */
export function pickStart(
  grid: Grid,
  clusterMean: Float64Array,
  durationSeconds: number,
  latestStartMs: number | undefined,
  earliestStartMs?: number,
  prefer: 'earliest' | 'latest' = 'earliest',
  /** Per grid step: half the width of the cluster load's 80 % interval (differences below it are noise). */
  uncertainty?: Float64Array,
): ScheduleResult {
  const durationMs = durationSeconds * 1000;
  const horizonEnd = grid.nowMs + grid.steps * grid.stepMs;
  const noDeadline = latestStartMs === undefined;
  const latest = noDeadline ? Math.max(grid.nowMs, horizonEnd - durationMs) : latestStartMs;
  if (latest < grid.nowMs) return { startAtMs: grid.nowMs, reason: 'now-no-window', latestStartMs: latest };
  const candidates: { at: number; load: number; noise: number }[] = [];
  let first = grid.nowMs;
  if (earliestStartMs !== undefined && earliestStartMs > first) {
    first = grid.nowMs + Math.ceil((earliestStartMs - grid.nowMs) / grid.stepMs) * grid.stepMs;
    if (first > latest) first = latest;
  }
  for (let at = first; at <= latest; at += grid.stepMs) {
    // Only "earliest" jobs start sooner for it; "latest" ones (filling a new server) keep their rule.
    candidates.push({ at, load: averageLoad(grid, clusterMean, at, durationMs), noise: uncertainty && prefer === 'earliest' ? averageLoad(grid, uncertainty, at, durationMs) : 0 });
  }
  let min = Infinity;
  for (const c of candidates) min = Math.min(min, c.load);
  const inWindow = candidates.filter((c) => c.load <= Math.max(min * (1 + (prefer === 'latest' ? LATEST_WINDOW_TOLERANCE : LOW_WINDOW_TOLERANCE)), min + c.noise) + 1e-9);
  // "Latest" is anchored to the deadline, not to now, so re-planning every few minutes does not
  // keep pushing the job later.
  const jit = inWindow.filter((c) => c.at <= latest - JIT_BUFFER_SECONDS * 1000);
  const pick = (prefer === 'latest' ? jit[jit.length - 1] ?? inWindow[0] : inWindow[0]) ?? candidates[0]!;
  return { startAtMs: pick.at, reason: noDeadline && pick.at === grid.nowMs ? 'now-no-deadline' : 'low-window', latestStartMs: latest };
}
