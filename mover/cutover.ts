// The cutover as verb-named steps behind one interface, a dry run that only lists them, and the runner with its budget.
//
// Order (Vitess SwitchTraffic, adapted to a trigger fence):
//   holdTraffic → waitForInFlight → fenceSource → drainFinalChanges → switchRouting ‖ installRouting → releaseTraffic
// Before switchRouting every step is undoable and the budget is checked after each one; running out
// of budget or failing aborts: the fence is lifted (capture again), held traffic is released to the
// source, and the job goes back to catching_up. switchRouting commits the new owner and the job's
// move to `cleanup` in one catalog transaction: that commit is the point of no return. After it, the
// runner only goes forward (install, release), retrying rather than aborting.

/** The steps, each named for what it does. `abortCutover` undoes everything before the point of no return. */
export interface CutoverSteps {
  holdTraffic(): Promise<void>;
  waitForInFlight(timeoutMs: number): Promise<void>;
  fenceSource(timeoutMs: number): Promise<void>;
  drainFinalChanges(): Promise<void>;
  /** POINT OF NO RETURN: commits the routing version naming the target (and the job's `cleanup`). */
  switchRouting(): Promise<number>;
  installRouting(version: number, timeoutMs: number): Promise<void>;
  releaseTraffic(): Promise<void>;
  abortCutover(reason: string): Promise<void>;
  /** After switchRouting threw: did its commit happen anyway? (the version, or null). Throws if unknowable. */
  routingSwitched(): Promise<number | null>;
}

export const CUTOVER_STEP_NAMES = ['holdTraffic', 'waitForInFlight', 'fenceSource', 'drainFinalChanges', 'switchRouting', 'installRouting', 'releaseTraffic'] as const;

const DESCRIPTIONS: Record<string, string> = {
  holdTraffic: 'every live proxy buffers new queries for the range',
  waitForInFlight: 'wait until every live proxy acks the hold: no transaction on the range open there (no ack: abort, never fence)',
  fenceSource: 'source triggers switch from capture to fence (writes to the range raise PT001)',
  drainFinalChanges: 'copy the last changelog entries to the target',
  switchRouting: 'POINT OF NO RETURN: commit the routing version naming the target',
  installRouting: 'proxies install the new routing version and ack',
  releaseTraffic: 'held queries run on the target',
  abortCutover: 'lift the fence, release held queries to the source, back to catching_up',
};

/** Records the steps instead of running them (`MOVE PARTITION … DRY RUN`, tests, docs). */
export class DryRunCutover implements CutoverSteps {
  readonly log: string[] = [];
  private say(step: string, extra = ''): void {
    this.log.push(`${step}${extra}: ${DESCRIPTIONS[step]}`);
  }
  async holdTraffic() { this.say('holdTraffic'); }
  async waitForInFlight(ms: number) { this.say('waitForInFlight', ` (≤ ${Math.round(ms)} ms)`); }
  async fenceSource(ms: number) { this.say('fenceSource', ` (lock_timeout ${Math.round(ms)} ms)`); }
  async drainFinalChanges() { this.say('drainFinalChanges'); }
  async switchRouting() { this.say('switchRouting'); return 0; }
  async installRouting(v: number, ms: number) { this.say('installRouting', ` (version ${v}, ≤ ${Math.round(ms)} ms)`); }
  async releaseTraffic() { this.say('releaseTraffic'); }
  async abortCutover(reason: string) { this.say('abortCutover', ` (${reason})`); }
  async routingSwitched() { return null; }
}

export type CutoverDecision =
  | { go: true; version: number; pauseMs: number; steps: { step: string; ms: number }[] }
  | { go: false; reason: string; pauseMs: number; steps: { step: string; ms: number }[] };

export interface CutoverBudget {
  /** Budget for hold → routing commit (the pause clients see), ms. */
  budgetMs: number;
  /** How long proxies get to ack the new version after the point of no return, ms. */
  installTimeoutMs: number;
  now?: () => number;
}

/** Run the steps in order under the budget; returns Go (switched) or NoGo (aborted, with why). */
export async function runCutover(s: CutoverSteps, b: CutoverBudget): Promise<CutoverDecision> {
  const now = b.now ?? (() => performance.now());
  const t0 = now();
  const steps: { step: string; ms: number }[] = [];
  const left = () => b.budgetMs - (now() - t0);
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const s0 = now();
    const r = await fn();
    steps.push({ step, ms: now() - s0 });
    return r;
  };
  const check = (after: string) => {
    if (left() < 0) throw new BudgetExceeded(`cutover budget of ${b.budgetMs} ms exceeded after ${after} (${Math.round(now() - t0)} ms)`);
  };
  let version: number;
  try {
    await timed('holdTraffic', () => s.holdTraffic());
    check('holdTraffic');
    await timed('waitForInFlight', () => s.waitForInFlight(Math.max(1, left())));
    check('waitForInFlight');
    await timed('fenceSource', () => s.fenceSource(Math.max(1, left())));
    check('fenceSource');
    await timed('drainFinalChanges', () => s.drainFinalChanges());
    check('drainFinalChanges');
  } catch (err) {
    const reason = err instanceof BudgetExceeded ? err.message : `cutover step failed: ${(err as Error).message}`;
    await s.abortCutover(reason);
    return { go: false, reason, pauseMs: now() - t0, steps };
  }
  // ---- POINT OF NO RETURN: once switchRouting commits, the target owns the range; only forward. ----
  try {
    version = await timed('switchRouting', () => s.switchRouting());
  } catch (err) {
    // Did the commit happen before the error (a lost reply)? If the catalog cannot say, this
    // throws: the fence stays up and the job stays in `cutover`, to be re-derived on the next run.
    const switched = await s.routingSwitched();
    if (switched === null) {
      const reason = `switchRouting failed: ${(err as Error).message}`;
      await s.abortCutover(reason);
      return { go: false, reason, pauseMs: now() - t0, steps };
    }
    version = switched;
  }
  try {
    await timed('installRouting', () => s.installRouting(version, b.installTimeoutMs));
  } catch {
    // A proxy that did not ack serves a stale version: its writes hit the fence and it reloads.
  }
  await timed('releaseTraffic', () => s.releaseTraffic());
  return { go: true, version, pauseMs: now() - t0, steps };
}

export class BudgetExceeded extends Error {}
