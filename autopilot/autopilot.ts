// The leader's forecast → plan → apply loop, and the admin verbs behind SHOW FORECAST, SCHEDULE EVENT, SHOW PLAN, APPLY PLAN, RESTORE TABLE.
//
// Every run (on the leader's clock, every `interval_s`, or on demand with RUN AUTOPILOT):
// 1. Forecast: the load history is summed per partition and step (history.ts), events come from
//    pgtide.events and the optional feed, restore requests seed partitions without history. The
//    whole forecastMany call runs in a child process at SCHED_IDLE (or a worker thread:
//    forecast_in; forecast-runner.ts); the global LSTM trains in a nested worker, paced to a duty
//    cycle while the proxy's event loop is busy (busy-duty.ts), is stored in pgtide.models and reused until `retrain_h` has passed, so a
//    restart does not retrain. Every partition's steps (mean + p10/p50/p90/p99, load units/s) go
//    to pgtide.forecasts under one run id.
// 2. Plan (modes recommend and auto): the latest run, the routing table, key samples, sizes, the
//    action history (cooldowns) and running jobs go into the pure planner; a scale-down step the
//    previous plan already had keeps the earlier start (commitment.ts); the plan is stored, and
//    what it declined to do (NaN forecasts, busy partitions, cooldowns…) goes to the log when it changes.
// 3. Apply (auto): steps whose start time has come and whose dependencies are applied, at most
//    `max_steps_per_run` per run. Splits and merges on one shard are catalog changes; moves go to
//    the mover when this build has one, and are refused with 0A000 otherwise. A partition with a
//    running job (or in a non-active state) is never touched.
// Nothing here blocks the event loop for long: SQL is async, models run in workers.
import type { Logger } from 'pino';
import type { Catalog } from '../config/catalog.js';
import { PgtideError } from '../config/errors.js';
import type { KeyType, Partition, RoutingTable } from '../config/types.js';
import {
  DEFAULT_KNOBS, explainPlan, partitionsNeeded, planResharding, planStep, resolveRestoreParameters, stepsToApply,
  type ActionRecord, type ActualLoad, type PartitionForecast, type Plan, type PlanStep, type RestoreForecastNeeds,
} from '../planner/index.js';
import { fetchEventFeed, parseScheduleEvent, PredictorError, type ScheduledEvent, type SeriesInput } from '../predictor/index.js';
import { keepEarlierStarts } from './commitment.js';
import { AutopilotError } from './errors.js';
import { forecastOffLoop } from './forecast-runner.js';
import { proxyBusyDuty } from './busy-duty.js';
import { readLoadHistory } from './history.js';
import { parseRestoreTable } from './restore.js';
import { loadSettings, saveSetting, thresholdsOf, type AutopilotMode, type AutopilotSettings } from './settings.js';
import { AutopilotStore, type StoredStep } from './store.js';

/** Quantile levels stored per step. */
export const LEVELS = [0.1, 0.5, 0.9, 0.99] as const;
const MODEL_NAME = 'global-lstm';

/** An admin answer (the proxy's AdminResult, structurally). */
export interface AdminAnswer {
  columns?: string[];
  rows?: (string | number | null)[][];
  tag?: string;
  notices?: string[];
}

export interface MoveStarter {
  startMove(partitionId: number, targetShard: number): Promise<{ id: number }>;
}

export interface AutopilotDeps {
  catalog: Catalog;
  log: Logger;
  /** Install a routing version here and wait for every proxy's ack; returns notices. */
  announce(version: number): Promise<string[]>;
  queryShard(shardId: number, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The live mover; absent in a build without mover/index.ts exporting startMove. */
  mover?: MoveStarter;
  now?: () => number;
}

const r4 = (x: number): number | null => (Number.isFinite(x) ? Number(x.toPrecision(4)) : null);
const iso = (ms: number): string => new Date(ms).toISOString();

export class Autopilot {
  readonly store: AutopilotStore;
  private readonly now: () => number;
  private running: Promise<void> | null = null;
  private lastRunAt: number;
  private lastReasons = '';
  private readonly abort = new AbortController();

  constructor(private readonly deps: AutopilotDeps) {
    this.store = new AutopilotStore(deps.catalog.pool);
    this.now = deps.now ?? Date.now;
    // The first clock run waits one interval: a fresh proxy has nothing to forecast yet, and a
    // restarted one has the stored forecast.
    this.lastRunAt = this.now();
  }

  private get log(): Logger {
    return this.deps.log;
  }

  /** Stops a forecast in flight (its worker is terminated) and waits for the run to end. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running?.catch(() => {});
  }

  /** Called on the leader's heartbeat: starts a run in the background when one is due. */
  async onLeaderTick(): Promise<void> {
    if (this.running || this.abort.signal.aborted) return;
    const s = await loadSettings(this.deps.catalog);
    if (this.now() - this.lastRunAt < s.interval_s * 1000) return;
    void this.runOnce('clock').catch((err: Error) => this.log.warn({ err: err.message }, 'autopilot run failed'));
  }

  /** One forecast + plan (+ apply in auto mode); runs are serialized. */
  async runOnce(reason = 'on demand'): Promise<{ runId: number | null; plan: Plan | null; applied: string[] }> {
    while (this.running) await this.running.catch(() => {});
    let out: { runId: number | null; plan: Plan | null; applied: string[] } = { runId: null, plan: null, applied: [] };
    const p = (async () => {
      this.lastRunAt = this.now();
      const s = await loadSettings(this.deps.catalog);
      const runId = await this.forecast(s);
      let plan: Plan | null = null;
      const applied: string[] = [];
      if (s.mode !== 'off' && runId !== null) {
        plan = await this.plan(s);
        if (s.mode === 'auto' && plan) applied.push(...(await this.applyDue(s, plan)));
      }
      out = { runId, plan, applied };
      this.log.info({ reason, runId, steps: plan?.steps.length ?? null, applied: applied.length }, 'autopilot run');
    })();
    this.running = p;
    try {
      await p;
    } finally {
      this.running = null;
    }
    return out;
  }

  // ---------------------------------------------------------------- 1. forecast

  /** Forecasts every partition of every sharded key space; returns the run id (null: nothing to forecast). */
  async forecast(s: AutopilotSettings): Promise<number | null> {
    const routing = await this.deps.catalog.loadRoutingTable();
    const ksTables = keyspaceTables(routing);
    const parts = routing.partitions.filter((p) => ksTables.has(p.keyspaceId));
    if (parts.length === 0) return null;
    const now = this.now();
    const lineage = await this.store.lineage(now - (s.history_steps + 1) * s.step_s * 1000);
    const hist = await readLoadHistory(this.deps.catalog.pool, s.step_s, s.history_steps, now, lineage);
    const restores = await this.store.restoreRequests();
    const events = await this.allEvents(s);
    if (hist.series.size === 0 && restores.length === 0) return null;
    const tableKs = new Map<string, number>();
    for (const [ks, tables] of ksTables) for (const t of tables) tableKs.set(t, ks);
    const inputs: SeriesInput[] = parts.map((p) => {
      const h = hist.series.get(p.id);
      const restore = restores.find((r) => tableKs.get(r.table) === p.keyspaceId && r.chosen.expectedPeak !== undefined);
      const nParts = routing.partitions.filter((q) => q.keyspaceId === p.keyspaceId).length;
      return {
        name: String(p.id),
        series: h ? { start: h.startMs, stepMs: hist.stepMs, values: h.values } : { start: hist.endMs, stepMs: hist.stepMs, values: [] },
        table: `ks:${p.keyspaceId}`,
        ...(restore ? { restore: { expectedPeak: restore.chosen.expectedPeak!, partitions: nParts, ...(restore.chosen.expectedRows !== undefined ? { expectedRows: restore.chosen.expectedRows } : {}) } } : {}),
      };
    });
    // Events name tables; a partition serves every table of its key space.
    const evs: ScheduledEvent[] = events.map((e) => {
      const { table, ...rest } = e;
      if (table === undefined) return rest;
      const ks = tableKs.get(table);
      return { ...rest, table: ks !== undefined ? `ks:${ks}` : `unknown:${table}` };
    });
    let pretrained: unknown;
    let lstmNote = 'off';
    if (s.lstm === 'on') {
      const stored = await this.store.loadModel(MODEL_NAME);
      if (stored && stored.horizon === s.horizon && stored.stepS === s.step_s && now - stored.trainedAt < s.retrain_h * 3_600_000) {
        pretrained = stored.model;
        lstmNote = `reused the model trained at ${iso(stored.trainedAt)}`;
      } else {
        lstmNote = stored ? 'retrained (stored model too old or for another horizon/step)' : 'trained (no stored model)';
      }
    }
    // Durations are real time, whatever clock the autopilot runs on.
    const t0 = performance.now();
    if (this.abort.signal.aborted) return null;
    const result = await forecastOffLoop(s.forecast_in, {
      inputs, priority: s.forecast_priority,
      opts: {
        horizon: s.horizon, quantiles: [...LEVELS], model: 'auto', events: evs,
        lstm: s.lstm === 'off' ? false : pretrained !== undefined ? { pretrained } : { epochs: s.lstm_epochs, samples: s.lstm_samples },
      },
    }, undefined, this.abort.signal, s.forecast_priority === 'low' ? proxyBusyDuty() : undefined);
    const ms = performance.now() - t0;
    if (result.lstmModel && pretrained === undefined) await this.store.saveModel(MODEL_NAME, s.horizon, s.step_s, result.lstmModel, now);
    if (!result.lstmModel && s.lstm === 'on') lstmNote += '; the LSTM was not used (too little history or it failed: see notes)';
    const steps: StoredStep[] = [];
    const notes = new Set<string>();
    if (result.ranAt) notes.add(`forecast ran in ${result.ranAt}`);
    for (const p of parts) {
      const f = result.forecasts[String(p.id)];
      if (!f) continue;
      for (const n of f.notes) notes.add(n);
      if (f.steps.some((st) => !Number.isFinite(st.mean) || Object.values(st.quantiles).some((q) => !Number.isFinite(q)))) {
        await this.store.log('warn', `forecast for partition ${p.id} (${f.model}) has NaN or infinite values: the planner will not act on it`);
      }
      f.steps.forEach((st, k) => steps.push({ partitionId: p.id, step: k + 1, t: st.t, mean: st.mean, quantiles: st.quantiles, model: f.model }));
    }
    const runId = await this.store.saveForecastRun({ stepS: s.step_s, horizon: s.horizon, series: parts.length, ms, lstm: lstmNote, notes: [...notes].slice(0, 40) }, now, steps);
    return runId;
  }

  private async allEvents(s: AutopilotSettings): Promise<ScheduledEvent[]> {
    const stored = await this.store.events();
    if (!s.event_feed) return stored;
    try {
      return [...stored, ...(await fetchEventFeed(s.event_feed, { timeoutMs: 5000 }))];
    } catch (err) {
      await this.store.log('warn', `event feed skipped: ${(err as Error).message}`);
      return stored;
    }
  }

  // ---------------------------------------------------------------- 2. plan

  /** Plans from the latest stored forecast run; stores the plan and logs what it declined to do. */
  async plan(s?: AutopilotSettings): Promise<Plan | null> {
    const settings = s ?? (await loadSettings(this.deps.catalog));
    const run = await this.store.latestRun();
    if (!run) return null;
    const now = this.now();
    const routing = await this.deps.catalog.loadRoutingTable();
    const stored = await this.store.forecastSteps(run.id);
    const byPart = new Map<number, StoredStep[]>();
    for (const st of stored) {
      const list = byPart.get(st.partitionId) ?? [];
      list.push(st);
      byPart.set(st.partitionId, list);
    }
    const sizes = await this.sizes();
    const forecasts: PartitionForecast[] = [];
    for (const [id, list] of byPart) {
      const size = sizes.get(id);
      forecasts.push({
        partitionId: id, startMs: list[0]!.t, stepSeconds: run.stepS,
        steps: list.map((st) => ({ mean: st.mean, p10: q(st, 0.1), p50: q(st, 0.5), p90: q(st, 0.9), p99: q(st, 0.99) })),
        sizeBytes: size?.bytes ?? 0, sizeRows: size?.rows ?? 0,
      });
    }
    const busy = await this.store.busyPartitions();
    // The last two intervals: the last is the measured load, the one before shows a surge (planner surgeRise).
    const actualHist = await readLoadHistory(this.deps.catalog.pool, run.stepS, 2, now, await this.store.lineage(now - 3 * run.stepS * 1000));
    const history: ActionRecord[] = await this.store.actions(now - Math.max(settings.cooldown_s * 1000, 86_400_000));
    const samples = await this.keySamples();
    const shards = routing.shards.filter((x) => x.state === 'active' || x.state === 'draining');
    const previous = await this.store.latestPlan();
    const fresh = planResharding({
      nowMs: now,
      routing,
      shards: shards.map((x) => ({ shardId: x.id, capacity: settings.shard_capacity })),
      spareShards: [],
      forecasts,
      keySamples: [...samples].map(([partitionId, list]) => ({ partitionId, samples: list })),
      sizes: [...sizes].map(([partitionId, v]) => ({ partitionId, bytes: v.bytes, rows: v.rows })),
      thresholds: thresholdsOf(settings),
      knobs: { cooldownSeconds: settings.cooldown_s },
      history,
      mover: { throughputBytesPerSec: settings.mover_bytes_per_s, cutoverSeconds: settings.cutover_s },
      runningJobs: [...busy].map(([partitionId, j]) => ({ jobId: j.jobId, partitionId, kind: 'move' as const, ...(j.toShard !== undefined ? { toShard: j.toShard } : {}) })),
      actual: actualLoads(actualHist.series.values(), actualHist.endMs),
    });
    const plan = keepEarlierStarts(previous?.plan ?? null, fresh, run.horizon * run.stepS * 1000);
    await this.store.savePlan(plan);
    const reasons = [...plan.reasons.map((r) => `${r.code}: ${r.message}`), ...plan.forecastMiss.map((m) => `forecast miss: ${m.message}`)];
    const key = reasons.join('\n');
    if (key !== this.lastReasons) {
      this.lastReasons = key;
      for (const r of reasons) await this.store.log(r.startsWith('forecast miss') ? 'warn' : 'info', `plan ${plan.planId}: not done, ${r}`);
    }
    return plan;
  }

  private async sizes(): Promise<Map<number, { bytes: number; rows: number }>> {
    const { rows } = await this.deps.catalog.pool.query<{ partition_id: number; bytes: number; rows: number }>(
      `SELECT partition_id, sum(bytes)::float8 AS bytes, sum(rows)::float8 AS rows FROM (
         SELECT DISTINCT ON (partition_id, table_name) partition_id, bytes, rows FROM pgtide.partition_sizes
          ORDER BY partition_id, table_name, at DESC) s GROUP BY partition_id`);
    return new Map(rows.map((r) => [r.partition_id, { bytes: r.bytes, rows: r.rows }]));
  }

  /** The last hour of key samples, on the autopilot's clock (the recorder stamps them with the same one). */
  private async keySamples(): Promise<Map<number, { hash: bigint; weight: number }[]>> {
    const { rows } = await this.deps.catalog.pool.query<{ partition_id: number; h: string; w: number }>(
      `SELECT partition_id, key_hash::text AS h, sum(weight)::float8 AS w FROM pgtide.key_samples
        WHERE bucket > to_timestamp($1::float8 / 1000) - interval '1 hour' GROUP BY partition_id, key_hash`, [this.now()]);
    const out = new Map<number, { hash: bigint; weight: number }[]>();
    for (const r of rows) {
      const list = out.get(r.partition_id) ?? [];
      list.push({ hash: BigInt(r.h), weight: r.w });
      out.set(r.partition_id, list);
    }
    return out;
  }

  // ---------------------------------------------------------------- 3. apply

  private async applyDue(s: AutopilotSettings, plan: Plan): Promise<string[]> {
    const latest = await this.store.latestPlan();
    const applied = new Set(latest?.plan.planId === plan.planId ? latest.applied : []);
    const done: string[] = [];
    const now = this.now();
    for (const step of plan.steps) {
      if (done.length >= s.max_steps_per_run) break;
      if (applied.has(step.n) || step.startAtMs > now) continue;
      if (!step.dependsOn.every((d) => applied.has(d))) continue;
      if (!['split', 'merge', 'move'].includes(step.action.kind)) continue;
      try {
        done.push(...(await this.applyStep(plan, step)));
        applied.add(step.n);
      } catch (err) {
        await this.store.log('warn', `auto: step ${step.n} of plan ${plan.planId} not started: ${(err as Error).message}`);
      }
    }
    return done;
  }

  /** Applies one step (its dependencies must be applied); returns notices. */
  private async applyStep(plan: Plan, step: PlanStep): Promise<string[]> {
    const routing = await this.deps.catalog.loadRoutingTable();
    const busy = await this.store.busyPartitions();
    const a = step.action;
    const checkIdle = (id: number): void => {
      const job = busy.get(id);
      if (job) throw new AutopilotError('PARTITION_BUSY', `step ${step.n}: partition ${id} has a running job (${typeof job.jobId === 'number' ? `job ${job.jobId}` : job.jobId}); nothing started`, { sqlstate: '55006' });
    };
    const base = { planId: plan.planId, step: step.n, atMs: this.now() };
    switch (a.kind) {
      case 'split': {
        const p = resolvePartition(routing, a.partitionId, step.range.lo, step.range.hi, a.at);
        checkIdle(p.id);
        // The left piece's share of the load by key samples: its share of the history before the split.
        const samples = (await this.keySamples()).get(p.id) ?? [];
        const total = samples.reduce((x, k) => x + k.weight, 0);
        const share = total > 0 ? samples.filter((k) => k.hash < a.at).reduce((x, k) => x + k.weight, 0) / total : undefined;
        const r = await this.deps.catalog.splitPartition(p.id, a.at);
        const notices = await this.deps.announce(r.version);
        await this.store.recordAction({
          ...base, kind: 'split', partitionId: p.id, otherPartitionId: r.right, ...(share !== undefined ? { share } : {}), lo: p.lo, hi: p.hi, at: r.at, fromShard: p.shardId,
          detail: `split partition ${p.id} at ${r.at}: new partition ${r.right}`,
        });
        await this.store.markApplied(plan.planId, step.n);
        return [`step ${step.n}: partition ${p.id} split at ${r.at} (new partition ${r.right}, same shard ${p.shardId}; routing version ${r.version})`, ...notices];
      }
      case 'merge': {
        if (a.a < 0 || a.b < 0) throw new AutopilotError('STALE_PLAN', `step ${step.n} merges a piece this plan has not created yet; RUN AUTOPILOT to re-plan`, { sqlstate: '55000' });
        checkIdle(a.a);
        checkIdle(a.b);
        const pa = routing.partitions.find((x) => x.id === a.a);
        const pb = routing.partitions.find((x) => x.id === a.b);
        const r = await this.deps.catalog.mergePartitions(a.a, a.b);
        const notices = await this.deps.announce(r.version);
        await this.store.recordAction({ ...base, kind: 'merge', partitionId: r.kept, otherPartitionId: r.removed, lo: minBig(pa?.lo, pb?.lo), hi: maxBig(pa?.hi, pb?.hi), detail: `merged partitions ${a.a}, ${a.b} into ${r.kept}` });
        await this.store.markApplied(plan.planId, step.n);
        return [`step ${step.n}: partitions ${a.a} and ${a.b} merged into ${r.kept} (routing version ${r.version})`, ...notices];
      }
      case 'move': {
        const p = resolvePartition(routing, a.partitionId, step.range.lo, step.range.hi);
        checkIdle(p.id);
        if (!this.deps.mover) {
          throw new AutopilotError('MOVES_UNAVAILABLE', `step ${step.n}: live moves are not available in this build (MOVE PARTITION ${p.id} TO SHARD ${a.toShard} was not started)`, { sqlstate: '0A000' });
        }
        const job = await this.deps.mover.startMove(p.id, a.toShard);
        await this.store.recordAction({ ...base, kind: 'move', partitionId: p.id, lo: p.lo, hi: p.hi, fromShard: p.shardId, toShard: a.toShard, detail: `move of partition ${p.id} to shard ${a.toShard}: job ${job.id}` });
        await this.store.markApplied(plan.planId, step.n);
        return [`step ${step.n}: job ${job.id} moves partition ${p.id} from shard ${p.shardId} to shard ${a.toShard}`];
      }
      default:
        throw new AutopilotError('NEEDS_OPERATOR', `step ${step.n} (${a.kind}) needs an operator: the autopilot does not add or drain servers by itself`, { sqlstate: '0A000' });
    }
  }

  // ---------------------------------------------------------------- admin verbs

  async showForecast(target: string | null, horizon: number | null): Promise<AdminAnswer> {
    if (horizon !== null && (!Number.isInteger(horizon) || horizon < 1)) throw new AutopilotError('BAD_HORIZON', `HORIZON must be a positive whole number of steps, got ${horizon}`, { sqlstate: '22023' });
    const run = await this.store.latestRun();
    const routing = await this.deps.catalog.loadRoutingTable();
    let ids: number[] | undefined;
    if (target !== null) {
      if (/^\d+$/.test(target)) {
        const id = Number(target);
        if (!routing.partitions.some((p) => p.id === id)) throw new AutopilotError('UNKNOWN_PARTITION', `partition ${id} does not exist`, { sqlstate: '42704' });
        ids = [id];
      } else {
        const t = routing.tables.find((x) => x.name === target);
        if (!t) throw new AutopilotError('UNKNOWN_TABLE', `relation "${target}" is not known to pgtide`, { sqlstate: '42P01' });
        if (t.keyspaceId === undefined) throw new AutopilotError('NOT_SHARDED', `"${target}" is a reference table: it has no partitions to forecast`, { sqlstate: '22023' });
        ids = routing.partitions.filter((p) => p.keyspaceId === t.keyspaceId).map((p) => p.id);
      }
    }
    const columns = ['partition', 'step', 't', 'mean', 'p10', 'p50', 'p90', 'p99', 'model'];
    if (!run) return { columns, rows: [], notices: ['no forecast yet: the leader forecasts every interval_s once load history exists (RUN AUTOPILOT forecasts now)'] };
    const h = horizon ?? run.horizon;
    const notices = [`forecast run ${run.id} at ${iso(run.at)}: ${run.horizon} steps of ${run.stepS} s, ${run.series} partitions, ${Math.round(run.ms)} ms; values are load units per second; LSTM: ${run.lstm ?? 'off'}`];
    if (h > run.horizon) notices.push(`HORIZON ${h} asked, the run forecast ${run.horizon} steps (SET AUTOPILOT horizon = ${h} for longer ones)`);
    const steps = (await this.store.forecastSteps(run.id, ids)).filter((st) => st.step <= h);
    return {
      columns,
      rows: steps.map((st) => [st.partitionId, st.step, iso(st.t), r4(st.mean), r4(q(st, 0.1)), r4(q(st, 0.5)), r4(q(st, 0.9)), r4(q(st, 0.99)), st.model]),
      notices,
    };
  }

  async scheduleEvent(text: string): Promise<AdminAnswer> {
    let ev: ScheduledEvent;
    try {
      ev = parseScheduleEvent(text);
    } catch (err) {
      if (err instanceof PredictorError) throw new AutopilotError(err.code, err.message, { sqlstate: err.sqlstate });
      throw err;
    }
    if (ev.table !== undefined) {
      const routing = await this.deps.catalog.loadRoutingTable();
      if (!routing.tables.some((t) => t.name === ev.table)) throw new AutopilotError('UNKNOWN_TABLE', `relation "${ev.table}" is not known to pgtide`, { sqlstate: '42P01' });
    }
    const id = await this.store.addEvent(ev);
    const start = typeof ev.start === 'number' ? ev.start : ev.start.getTime();
    return { tag: 'SCHEDULE EVENT', notices: [`event ${id} ${ev.name} at ${iso(start)} for ${ev.durationMs / 60_000} min${ev.table ? ` on ${ev.table}` : ''}${ev.multiplier !== undefined ? `, expecting ×${ev.multiplier}` : ''}: the next forecast takes it into account`] };
  }

  async showEvents(): Promise<AdminAnswer> {
    const s = await loadSettings(this.deps.catalog);
    const evs = await this.store.events();
    const rows: (string | number | null)[][] = evs.map((e) => {
      const start = typeof e.start === 'number' ? e.start : e.start.getTime();
      return [e.id, e.name, iso(start), iso(start + e.durationMs), e.table ?? null, e.multiplier ?? null, e.source];
    });
    const notices: string[] = [];
    if (s.event_feed) {
      try {
        const feed = await fetchEventFeed(s.event_feed, { timeoutMs: 5000 });
        for (const e of feed) {
          const start = typeof e.start === 'number' ? e.start : e.start.getTime();
          rows.push([null, e.name, iso(start), iso(start + e.durationMs), e.table ?? null, e.multiplier ?? null, 'feed']);
        }
      } catch (err) {
        notices.push(`event feed unavailable: ${(err as Error).message}`);
      }
    }
    return { columns: ['id', 'name', 'start', 'end', 'table', 'expect', 'source'], rows, notices };
  }

  async setMode(mode: AutopilotMode): Promise<AdminAnswer> {
    await saveSetting(this.deps.catalog, 'mode', mode);
    await this.store.log('info', `autopilot mode set to ${mode}`);
    return { tag: 'SET AUTOPILOT', notices: [`autopilot is ${mode}${mode === 'recommend' ? ': SHOW PLAN shows the plan, APPLY PLAN [STEP n] applies it' : mode === 'auto' ? ': due steps are applied on every run' : ': forecasts continue, no plans are made'}`] };
  }

  async set(name: string, value: string): Promise<AdminAnswer> {
    const next = await saveSetting(this.deps.catalog, name, value);
    return { tag: 'SET AUTOPILOT', notices: [`${name.toLowerCase()} = ${String(next[name.toLowerCase() as keyof AutopilotSettings])}`] };
  }

  async showAutopilot(): Promise<AdminAnswer> {
    const s = await loadSettings(this.deps.catalog);
    const rows: (string | number | null)[][] = Object.entries(s).map(([k, v]) => ['setting', k, String(v)]);
    const run = await this.store.latestRun();
    if (run) rows.push(['last run', String(run.id), `${iso(run.at)}: ${run.series} partitions in ${run.ms} ms; LSTM: ${run.lstm ?? 'off'}`]);
    for (const l of await this.store.recentLog(30)) rows.push(['log', iso(l.at.getTime()), `${l.level}: ${l.message}`]);
    return { columns: ['kind', 'name', 'value'], rows };
  }

  async showPlan(): Promise<AdminAnswer> {
    const s = await loadSettings(this.deps.catalog);
    const latest = await this.store.latestPlan();
    if (!latest) return { columns: ['line'], rows: [], notices: [s.mode === 'off' ? 'autopilot is off: no plans are made (SET AUTOPILOT recommend)' : 'no plan yet: RUN AUTOPILOT plans now'] };
    const applied = new Set(latest.applied);
    const lines = explainPlan(latest.plan).map((l) => {
      const m = /^step (\d+):/.exec(l);
      return m && applied.has(Number(m[1])) ? `${l} [applied]` : l;
    });
    return { columns: ['line'], rows: lines.map((l) => [l]), notices: [`autopilot mode: ${s.mode}`] };
  }

  async applyPlan(n: number | null): Promise<AdminAnswer> {
    const s = await loadSettings(this.deps.catalog);
    if (s.mode === 'off') throw new AutopilotError('AUTOPILOT_OFF', 'the autopilot is off: there is no plan to apply', { sqlstate: '55000', hint: 'SET AUTOPILOT recommend' });
    const latest = await this.store.latestPlan();
    if (!latest) throw new AutopilotError('NO_PLAN', 'no plan yet', { sqlstate: '55000', hint: 'RUN AUTOPILOT makes one; SHOW PLAN shows it' });
    const { plan } = latest;
    const applied = new Set(latest.applied);
    let steps: PlanStep[];
    if (n === null) {
      steps = plan.steps;
    } else {
      if (!planStep(plan, n)) throw new AutopilotError('NO_SUCH_STEP', `plan ${plan.planId} has no step ${n} (it has ${plan.steps.length})`, { sqlstate: '22023' });
      if (applied.has(n)) throw new AutopilotError('ALREADY_APPLIED', `step ${n} of plan ${plan.planId} is applied already`, { sqlstate: '55000' });
      steps = stepsToApply(plan, n);
    }
    const notices: string[] = [];
    for (const step of steps) {
      if (applied.has(step.n)) continue;
      try {
        notices.push(...(await this.applyStep(plan, step)));
      } catch (err) {
        if (notices.length && err instanceof PgtideError) err.detail = `done before the failure: ${notices.join('; ')}`;
        throw err;
      }
      applied.add(step.n);
    }
    if (notices.length === 0) notices.push('nothing to apply: every step is applied already');
    return { tag: 'APPLY PLAN', notices };
  }

  async runNow(): Promise<AdminAnswer> {
    const r = await this.runOnce('RUN AUTOPILOT');
    const notices = [r.runId === null ? 'nothing to forecast (no sharded table with load history or a restore request)' : `forecast run ${r.runId} stored`];
    if (r.plan) notices.push(`plan ${r.plan.planId}: ${r.plan.steps.length} step(s); SHOW PLAN explains it`);
    notices.push(...r.applied);
    return { tag: 'RUN AUTOPILOT', notices };
  }

  async showOverrides(): Promise<AdminAnswer> {
    const rows = await this.store.overrides();
    return {
      columns: ['id', 'time', 'table', 'parameter', 'user_value', 'chosen_value', 'pinned', 'reason'],
      rows: rows.map((o) => [o.id, iso(o.at.getTime()), o.table, o.parameter, o.userValue, o.chosenValue, o.pinned ? 'yes' : 'no', o.reason]),
    };
  }

  /**
   * RESTORE TABLE: the table must exist on the shards (pg_restore --schema-only through the proxy
   * first) and be empty; the planner's numbers win where the forecast disagrees, except PINNED ones.
   */
  async restoreTable(text: string): Promise<AdminAnswer> {
    const req = parseRestoreTable(text);
    const s = await loadSettings(this.deps.catalog);
    const routing = await this.deps.catalog.loadRoutingTable();
    const declared = routing.tables.find((t) => t.name === req.table);
    if (declared && declared.kind !== 'sharded') throw new AutopilotError('TABLE_ALREADY_DECLARED', `"${req.table}" is a reference table; a restore cannot shard it`, { sqlstate: '42710' });
    if (declared && declared.keyColumn !== req.shardKey) {
      throw new AutopilotError('TABLE_ALREADY_DECLARED', `"${req.table}" is already sharded by (${declared.keyColumn}), not (${req.shardKey})`, { sqlstate: '42710' });
    }
    let keyType: KeyType | undefined = declared?.keyType;
    if (!declared) keyType = await this.checkTableForRestore(routing, req.table, req.shardKey);
    const needs = await this.restoreNeeds(req.table, declared?.keyspaceId, req, s, routing);
    const resolution = resolveRestoreParameters(
      { table: req.table, pinned: req.pinned, ...(req.partitions !== undefined ? { partitions: req.partitions } : {}), ...(req.expectedRows !== undefined ? { expectedRows: req.expectedRows } : {}), ...(req.expectedPeak !== undefined ? { expectedPeak: req.expectedPeak } : {}) },
      needs,
    );
    const partitions = resolution.partitions ?? req.partitions ?? 8;
    const notices: string[] = [];
    if (!declared) {
      const version = await this.deps.catalog.shardTable(req.table, req.shardKey, keyType!, { partitions, alone: true });
      if (version !== null) notices.push(`routing version ${version}: ${req.table} sharded by ${req.shardKey} in its own key space with ${partitions} partitions`, ...(await this.deps.announce(version)));
    } else {
      notices.push(...(await this.growTo(routing, declared.keyspaceId!, partitions)));
    }
    const chosen = { partitions, ...(resolution.expectedRows !== undefined ? { expectedRows: resolution.expectedRows } : {}), ...(resolution.expectedPeak !== undefined ? { expectedPeak: resolution.expectedPeak } : {}), ...(req.expectedBytes !== undefined ? { expectedBytes: req.expectedBytes } : {}) };
    const user = { partitions: req.partitions ?? null, expectedRows: req.expectedRows ?? null, expectedPeak: req.expectedPeak ?? null, expectedBytes: req.expectedBytes ?? null };
    await this.store.saveRestore(req.table, req.shardKey, user, chosen, [...req.pinned], resolution.overrides);
    for (const o of resolution.overrides) {
      notices.push(o.pinned ? `${o.parameter}: kept the PINNED ${o.userValue} (${o.reason})` : `${o.parameter}: ${o.userValue} overridden with ${o.chosenValue} (${o.reason})`);
      await this.store.log('info', `restore ${req.table}: ${o.parameter} user ${o.userValue}, chosen ${o.chosenValue}${o.pinned ? ' (pinned)' : ''}: ${o.reason}`);
    }
    notices.push(`restore request for ${req.table} recorded (partitions ${partitions}${chosen.expectedRows !== undefined ? `, rows ${chosen.expectedRows}` : ''}${chosen.expectedPeak !== undefined ? `, peak ${chosen.expectedPeak}/s` : ''}): it seeds the forecast until load history exists`);
    return { tag: 'RESTORE TABLE', notices };
  }

  private async checkTableForRestore(routing: RoutingTable, table: string, column: string): Promise<KeyType> {
    const shards = routing.shards.filter((x) => x.state === 'active' || x.state === 'draining');
    const types = new Set<string>();
    for (const sh of shards) {
      const exists = await this.deps.queryShard(sh.id, 'SELECT to_regclass($1) IS NOT NULL AS ok', [table]);
      if (!exists[0]?.ok) {
        throw new AutopilotError('UNKNOWN_TABLE', `relation "${table}" does not exist on shard ${sh.id}`, {
          sqlstate: '42P01', hint: 'create the schema first (pg_restore --schema-only through the proxy), then RESTORE TABLE, then load the data (pg_restore --data-only or COPY)',
        });
      }
      const rows = await this.deps.queryShard(sh.id,
        `SELECT format_type(a.atttypid, NULL) AS type FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, [table, column]);
      if (rows.length === 0) throw new AutopilotError('UNKNOWN_COLUMN', `column "${column}" of relation "${table}" does not exist`, { sqlstate: '42703' });
      types.add(String(rows[0]!.type));
      const has = await this.deps.queryShard(sh.id, `SELECT EXISTS (SELECT 1 FROM ${table.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.')}) AS has_rows`);
      if (has[0]?.has_rows) throw new AutopilotError('TABLE_NOT_EMPTY', `table "${table}" already holds rows on shard ${sh.id}: RESTORE TABLE comes before the data`, { sqlstate: '0A000' });
    }
    if (types.size !== 1) throw new AutopilotError('SCHEMA_MISMATCH', `column "${column}" of "${table}" has different types on different shards: ${[...types].join(', ')}`, { sqlstate: '42804' });
    const t = [...types][0]!;
    const map: Record<string, KeyType> = { smallint: 'int2', integer: 'int4', bigint: 'int8', text: 'text', 'character varying': 'varchar', uuid: 'uuid' };
    const kt = map[t.replace(/\(.*\)$/, '')];
    if (!kt) throw new AutopilotError('BAD_KEY_TYPE', `cannot shard by "${column}" of type ${t}: the key must be smallint, integer, bigint, text, varchar or uuid`, { sqlstate: '42804' });
    return kt;
  }

  /**
   * What the forecast says the table needs: the summed p90 peak of its partitions' latest
   * forecast (history), else the user's expected_peak read as the p90 (the restore seed), raised
   * by the largest multiplier of an upcoming event on the table; bytes from expected_bytes or sizes.
   */
  private async restoreNeeds(table: string, keyspaceId: number | undefined, req: ReturnType<typeof parseRestoreTable>, s: AutopilotSettings, routing: RoutingTable): Promise<RestoreForecastNeeds> {
    const now = this.now();
    let peak: number | undefined;
    let basis: string;
    const run = keyspaceId !== undefined ? await this.store.latestRun() : null;
    const ids = keyspaceId !== undefined ? routing.partitions.filter((p) => p.keyspaceId === keyspaceId).map((p) => p.id) : [];
    const steps = run && ids.length ? (await this.store.forecastSteps(run.id, ids)).filter((st) => st.model !== 'zero' && st.model !== 'seed') : [];
    if (steps.length) {
      const perStep = new Map<number, number>();
      for (const st of steps) perStep.set(st.step, (perStep.get(st.step) ?? 0) + q(st, 0.9));
      peak = Math.max(...perStep.values());
      basis = `forecast run ${run!.id} from load history: p90 peak ${r4(peak)}/s over ${run!.horizon} steps`;
    } else {
      peak = req.expectedPeak;
      basis = peak !== undefined ? `no load history: the expected_peak ${peak}/s read as the p90` : 'no load history and no expected_peak';
    }
    const horizonEnd = now + s.horizon * s.step_s * 1000;
    const evs = (await this.store.events()).filter((e) => e.table === table && e.multiplier !== undefined);
    const upcoming = evs.filter((e) => {
      const st = typeof e.start === 'number' ? e.start : e.start.getTime();
      return st + e.durationMs > now && st < horizonEnd;
    });
    if (peak !== undefined && upcoming.length) {
      const m = Math.max(...upcoming.map((e) => e.multiplier!));
      if (m > 1) {
        peak *= m;
        basis += `, ×${m} for event ${upcoming.find((e) => e.multiplier === m)!.name}`;
      }
    }
    let bytes = req.expectedBytes;
    let rows: number | undefined;
    if (ids.length) {
      const sizes = await this.sizes();
      const got = ids.map((id) => sizes.get(id)).filter((x) => x !== undefined);
      if (got.length) {
        rows = got.reduce((a, x) => a + x!.rows, 0);
        bytes ??= got.reduce((a, x) => a + x!.bytes, 0);
      }
    }
    const partitions = partitionsNeeded({ ...(peak !== undefined ? { peakP90: peak } : {}), ...(bytes !== undefined ? { bytes } : {}), partitionMaxLoad: s.partition_max_load, partitionMaxBytes: s.partition_max_bytes, splitFill: DEFAULT_KNOBS.splitFill });
    return {
      table, partitions,
      ...(rows !== undefined && rows > 0 ? { expectedRows: Math.round(rows) } : {}),
      ...(peak !== undefined ? { expectedPeak: Number(peak.toPrecision(6)) } : {}),
      basis: `${basis}; limit ${s.partition_max_load}/s per partition at ${DEFAULT_KNOBS.splitFill * 100} % fill`,
    };
  }

  /** Splits the widest partitions of a key space (metadata only) until it has `target` of them. */
  private async growTo(routing: RoutingTable, keyspaceId: number, target: number): Promise<string[]> {
    const notices: string[] = [];
    let parts = routing.partitions.filter((p) => p.keyspaceId === keyspaceId);
    let version = 0;
    while (parts.length < target) {
      const widest = parts.reduce((a, b) => (b.hi - b.lo > a.hi - a.lo ? b : a));
      const r = await this.deps.catalog.splitPartition(widest.id, widest.lo + (widest.hi - widest.lo) / 2n);
      version = r.version;
      parts = [...parts.filter((p) => p.id !== widest.id), { ...widest, hi: r.at }, { ...widest, id: r.right, lo: r.at }];
    }
    if (version) notices.push(`routing version ${version}: key space ${keyspaceId} now has ${parts.length} partitions`, ...(await this.deps.announce(version)));
    return notices;
  }

  // ---------------------------------------------------------------- status page

  /** Forecast vs actual for the status page: the 4 busiest partitions, past steps and the forecast ahead. */
  async statusForecast(): Promise<{ partitionId: number; points: { t: number; actual: number | null; mean: number; lo: number; hi: number }[] }[]> {
    const run = await this.store.latestRun();
    if (!run) return [];
    const latest = await this.store.forecastSteps(run.id);
    const peak = new Map<number, number>();
    for (const st of latest) peak.set(st.partitionId, Math.max(peak.get(st.partitionId) ?? 0, Number.isFinite(st.mean) ? st.mean : 0));
    const top = [...peak].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([id]) => id);
    const back = Math.min(run.horizon, 48);
    const hist = await readLoadHistory(this.deps.catalog.pool, run.stepS, back, this.now());
    const past = await this.store.pastForecasts(top, hist.endMs - back * run.stepS * 1000);
    return top.map((id) => {
      const h = hist.series.get(id);
      const points: { t: number; actual: number | null; mean: number; lo: number; hi: number }[] = [];
      const pastById = new Map(past.filter((x) => x.partitionId === id).map((x) => [x.t, x]));
      if (h) {
        h.values.forEach((v, i) => {
          const t = h.startMs + i * run.stepS * 1000;
          const f = pastById.get(t);
          if (f) points.push({ t, actual: v, mean: f.mean, lo: q(f, 0.1), hi: q(f, 0.9) });
        });
      }
      for (const st of latest.filter((x) => x.partitionId === id)) {
        if (points.some((p) => p.t === st.t)) continue;
        points.push({ t: st.t, actual: null, mean: st.mean, lo: q(st, 0.1), hi: q(st, 0.9) });
      }
      return { partitionId: id, points: points.filter((p) => Number.isFinite(p.mean)) };
    });
  }
}

function q(st: StoredStep, level: number): number {
  const v = st.quantiles[String(level)];
  return v === undefined ? NaN : v;
}

function keyspaceTables(routing: RoutingTable): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const t of routing.tables) {
    if (t.kind !== 'sharded' || t.keyspaceId === undefined) continue;
    out.set(t.keyspaceId, [...(out.get(t.keyspaceId) ?? []), t.name]);
  }
  return out;
}

/** The partition a step names: by id when it still covers the step's range, else the one partition that does. */
function resolvePartition(routing: RoutingTable, id: number, lo: bigint, hi: bigint, inside?: bigint): Partition {
  const covers = (p: Partition) => p.lo <= lo && hi <= p.hi && (inside === undefined || (p.lo < inside && inside < p.hi));
  const byId = routing.partitions.find((p) => p.id === id);
  if (byId && covers(byId)) return byId;
  const cands = routing.partitions.filter(covers);
  if (cands.length === 1) return cands[0]!;
  throw new AutopilotError('STALE_PLAN', `the plan names partition ${id} [${lo}, ${hi}) but the routing table changed since it was made; RUN AUTOPILOT to re-plan`, { sqlstate: '55000' });
}

function minBig(a?: bigint, b?: bigint): bigint | undefined {
  return a === undefined ? b : b === undefined ? a : a < b ? a : b;
}

function maxBig(a?: bigint, b?: bigint): bigint | undefined {
  return a === undefined ? b : b === undefined ? a : a > b ? a : b;
}

/**
 * The planner's reactive input from the last two intervals of load history: the last interval's
 * load, and the one before it when the partition has a value there (a partition whose series
 * starts at the last interval is new: no trend).
 */
export function actualLoads(series: Iterable<{ partitionId: number; startMs: number; stepMs: number; values: (number | null)[] }>, endMs: number): ActualLoad[] {
  const out: ActualLoad[] = [];
  for (const h of series) {
    const n = h.values.length;
    const last = n ? h.values[n - 1] : null;
    if (last === null || last === undefined) continue;
    // Only a series that reaches the end of the window is current.
    if (h.startMs + n * h.stepMs !== endMs) continue;
    const before = n >= 2 ? h.values[n - 2] : null;
    out.push({ partitionId: h.partitionId, load: last, ...(before !== null && before !== undefined ? { previous: before } : {}) });
  }
  return out;
}
