// Scheduler: picks each job's start in the forecast's low-traffic window, finishing before the crossing.
//
// A job that must finish before a predicted crossing has a latest start: crossing − safety margin −
// the time the moves queued ahead of it need (the executor runs maxConcurrentMoves at once, so a
// batch of moves needs Σ duration / concurrency). Between now and that latest start, the scheduler
// picks the start whose run overlaps the least forecast cluster load (copying competes with
// foreground queries and the mover throttles itself when shards are busy), preferring the earliest
// of the starts within LOW_WINDOW_TOLERANCE of the best so a job does not wait for nothing. If the
// latest start is already past, the job starts now and the plan says why.

/** Starts whose load is within 5 % of the quietest are equally good; the earliest wins. */
export const LOW_WINDOW_TOLERANCE = 0.05;

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
 * Picks a start in [now, latestStart] at grid resolution. `latestStartMs` undefined means "no
 * deadline": the window is the whole horizon minus the job's duration.
 */
export function pickStart(grid: Grid, clusterMean: Float64Array, durationSeconds: number, latestStartMs: number | undefined): ScheduleResult {
  const durationMs = durationSeconds * 1000;
  const horizonEnd = grid.nowMs + grid.steps * grid.stepMs;
  const noDeadline = latestStartMs === undefined;
  const latest = noDeadline ? Math.max(grid.nowMs, horizonEnd - durationMs) : latestStartMs;
  if (latest < grid.nowMs) return { startAtMs: grid.nowMs, reason: 'now-no-window', latestStartMs: latest };
  const candidates: { at: number; load: number }[] = [];
  for (let at = grid.nowMs; at <= latest; at += grid.stepMs) {
    candidates.push({ at, load: averageLoad(grid, clusterMean, at, durationMs) });
  }
  let min = Infinity;
  for (const c of candidates) min = Math.min(min, c.load);
  const pick = candidates.find((c) => c.load <= min * (1 + LOW_WINDOW_TOLERANCE) + 1e-9) ?? candidates[0]!;
  return { startAtMs: pick.at, reason: noDeadline && pick.at === grid.nowMs ? 'now-no-deadline' : 'low-window', latestStartMs: latest };
}
