// The autopilot's catalog rows (migration 5): events, forecast runs, models, plans, restore requests, overrides, actions, log.
import type pg from 'pg';
import type { ScheduledEvent } from '../predictor/index.js';
import type { ActionRecord, OverrideEntry, Plan } from '../planner/index.js';
import type { LineageEvent } from './lineage.js';

/** A stored forecast step, as SHOW FORECAST and the planner read it (load units/s). */
export interface StoredStep {
  partitionId: number;
  step: number;
  t: number;
  mean: number;
  quantiles: Record<string, number>;
  model: string;
}

export interface ForecastRun {
  id: number;
  at: number;
  stepS: number;
  horizon: number;
  series: number;
  ms: number;
  lstm: string | null;
  notes: string[];
}

/** bigint-safe JSON for plans: bigints are written as "<digits>n" strings. */
export function planToJson(plan: Plan): unknown {
  return JSON.parse(JSON.stringify(plan, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
}

export function planFromJson(v: unknown): Plan {
  return JSON.parse(JSON.stringify(v), (_k, x: unknown) => (typeof x === 'string' && /^-?\d+n$/.test(x) ? BigInt(x.slice(0, -1)) : x)) as Plan;
}

const num = (v: unknown): number => (v === null || v === undefined ? NaN : Number(v));

export class AutopilotStore {
  constructor(private readonly pool: pg.Pool) {}

  // ---- events
  async addEvent(e: ScheduledEvent, source = 'admin'): Promise<number> {
    const start = typeof e.start === 'number' ? e.start : e.start.getTime();
    const { rows } = await this.pool.query<{ id: number }>(
      'INSERT INTO pgtide.events (name, start_at, duration_ms, table_name, multiplier, source) VALUES ($1, to_timestamp($2::float8 / 1000), $3, $4, $5, $6) RETURNING id',
      [e.name, start, e.durationMs, e.table ?? null, e.multiplier ?? null, source]);
    return rows[0]!.id;
  }

  async events(): Promise<(ScheduledEvent & { id: number; source: string })[]> {
    const { rows } = await this.pool.query<{ id: number; name: string; start_at: Date; duration_ms: string; table_name: string | null; multiplier: number | null; source: string }>(
      'SELECT id, name, start_at, duration_ms::text, table_name, multiplier, source FROM pgtide.events ORDER BY start_at, id');
    return rows.map((r) => ({
      id: r.id, name: r.name, start: r.start_at.getTime(), durationMs: Number(r.duration_ms), source: r.source,
      ...(r.table_name ? { table: r.table_name } : {}), ...(r.multiplier !== null ? { multiplier: r.multiplier } : {}),
    }));
  }

  // ---- forecasts
  async saveForecastRun(run: Omit<ForecastRun, 'id' | 'at'>, at: number, steps: StoredStep[]): Promise<number> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query<{ id: string }>(
        'INSERT INTO pgtide.forecast_runs (at, step_s, horizon, series, ms, lstm, notes) VALUES (to_timestamp($1::float8 / 1000), $2, $3, $4, $5, $6, $7) RETURNING id',
        [at, run.stepS, run.horizon, run.series, Math.round(run.ms), run.lstm, JSON.stringify(run.notes)]);
      const id = Number(rows[0]!.id);
      if (steps.length) {
        await c.query(
          `INSERT INTO pgtide.forecasts (run_id, partition_id, step, t, mean, quantiles, model)
           SELECT $1, p, s, to_timestamp(t / 1000), m, q, mo FROM unnest($2::int[], $3::int[], $4::float8[], $5::float8[], $6::jsonb[], $7::text[]) AS u(p, s, t, m, q, mo)`,
          [id, steps.map((s) => s.partitionId), steps.map((s) => s.step), steps.map((s) => s.t), steps.map((s) => s.mean),
            steps.map((s) => JSON.stringify(s.quantiles, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))), steps.map((s) => s.model)]);
      }
      // Keep a day of runs: the status page compares past forecasts with what happened.
      await c.query("DELETE FROM pgtide.forecasts WHERE run_id IN (SELECT id FROM pgtide.forecast_runs WHERE at < now() - interval '1 day')");
      await c.query("DELETE FROM pgtide.forecast_runs WHERE at < now() - interval '1 day'");
      await c.query('COMMIT');
      return id;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  async latestRun(): Promise<ForecastRun | null> {
    const { rows } = await this.pool.query<{ id: string; at: Date; step_s: number; horizon: number; series: number; ms: number; lstm: string | null; notes: string[] }>(
      'SELECT id, at, step_s, horizon, series, ms, lstm, notes FROM pgtide.forecast_runs ORDER BY id DESC LIMIT 1');
    const r = rows[0];
    return r ? { id: Number(r.id), at: r.at.getTime(), stepS: r.step_s, horizon: r.horizon, series: r.series, ms: r.ms, lstm: r.lstm, notes: r.notes } : null;
  }

  async forecastSteps(runId: number, partitionIds?: number[]): Promise<StoredStep[]> {
    const { rows } = await this.pool.query<{ partition_id: number; step: number; t: Date; mean: number; quantiles: Record<string, number | null>; model: string }>(
      `SELECT partition_id, step, t, mean, quantiles, model FROM pgtide.forecasts
        WHERE run_id = $1 AND ($2::int[] IS NULL OR partition_id = ANY($2)) ORDER BY partition_id, step`, [runId, partitionIds ?? null]);
    return rows.map((r) => ({
      partitionId: r.partition_id, step: r.step, t: r.t.getTime(), mean: num(r.mean), model: r.model,
      quantiles: Object.fromEntries(Object.entries(r.quantiles).map(([k, v]) => [k, num(v)])),
    }));
  }

  /** For each past step since `fromMs`: the forecast of the latest run made before it (forecast vs actual). */
  async pastForecasts(partitionIds: number[], fromMs: number): Promise<StoredStep[]> {
    const { rows } = await this.pool.query<{ partition_id: number; step: number; t: Date; mean: number; quantiles: Record<string, number | null>; model: string }>(
      `SELECT DISTINCT ON (f.partition_id, f.t) f.partition_id, f.step, f.t, f.mean, f.quantiles, f.model
         FROM pgtide.forecasts f JOIN pgtide.forecast_runs r ON r.id = f.run_id
        WHERE f.partition_id = ANY($1) AND f.t >= to_timestamp($2::float8 / 1000) AND r.at <= f.t
        ORDER BY f.partition_id, f.t, r.id DESC`, [partitionIds, fromMs]);
    return rows.map((r) => ({
      partitionId: r.partition_id, step: r.step, t: r.t.getTime(), mean: num(r.mean), model: r.model,
      quantiles: Object.fromEntries(Object.entries(r.quantiles).map(([k, v]) => [k, num(v)])),
    }));
  }

  // ---- models
  async loadModel(name: string): Promise<{ trainedAt: number; horizon: number; stepS: number; model: unknown } | null> {
    const { rows } = await this.pool.query<{ trained_at: Date; horizon: number; step_s: number; model: unknown }>(
      'SELECT trained_at, horizon, step_s, model FROM pgtide.models WHERE name = $1', [name]);
    const r = rows[0];
    return r ? { trainedAt: r.trained_at.getTime(), horizon: r.horizon, stepS: r.step_s, model: r.model } : null;
  }

  /** `trainedAtMs` on the autopilot's clock, which decides when the model is too old. */
  async saveModel(name: string, horizon: number, stepS: number, model: unknown, trainedAtMs: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO pgtide.models (name, trained_at, horizon, step_s, model) VALUES ($1, to_timestamp($5::float8 / 1000), $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET trained_at = EXCLUDED.trained_at, horizon = EXCLUDED.horizon, step_s = EXCLUDED.step_s, model = EXCLUDED.model`,
      [name, horizon, stepS, JSON.stringify(model), trainedAtMs]);
  }

  // ---- plans
  async savePlan(plan: Plan): Promise<void> {
    await this.pool.query('INSERT INTO pgtide.plans (id, created_at, plan) VALUES ($1, to_timestamp($2::float8 / 1000), $3) ON CONFLICT (id) DO NOTHING',
      [plan.planId, plan.createdAtMs, JSON.stringify(planToJson(plan))]);
    await this.pool.query("DELETE FROM pgtide.plans WHERE created_at < now() - interval '7 days'");
  }

  async latestPlan(): Promise<{ plan: Plan; applied: number[] } | null> {
    const { rows } = await this.pool.query<{ plan: unknown; applied: number[] }>('SELECT plan, applied FROM pgtide.plans ORDER BY created_at DESC, id LIMIT 1');
    return rows[0] ? { plan: planFromJson(rows[0].plan), applied: rows[0].applied } : null;
  }

  async markApplied(planId: string, n: number): Promise<void> {
    await this.pool.query('UPDATE pgtide.plans SET applied = array_append(applied, $2) WHERE id = $1 AND NOT ($2 = ANY(applied))', [planId, n]);
  }

  // ---- restore requests and overrides
  async saveRestore(table: string, shardKey: string, user: unknown, chosen: unknown, pinned: string[], overrides: OverrideEntry[]): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(
        `INSERT INTO pgtide.restore_requests (table_name, shard_key, user_params, chosen, pinned) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (table_name) DO UPDATE SET shard_key = EXCLUDED.shard_key, user_params = EXCLUDED.user_params, chosen = EXCLUDED.chosen, pinned = EXCLUDED.pinned, created_at = now()`,
        [table, shardKey, JSON.stringify(user), JSON.stringify(chosen), pinned]);
      for (const o of overrides) {
        await c.query('INSERT INTO pgtide.overrides (table_name, parameter, user_value, chosen_value, pinned, reason) VALUES ($1, $2, $3, $4, $5, $6)',
          [o.table, o.parameter, o.userValue, o.chosenValue, o.pinned, o.reason]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  async restoreRequests(): Promise<{ table: string; shardKey: string; chosen: { partitions?: number; expectedRows?: number; expectedPeak?: number; expectedBytes?: number } }[]> {
    const { rows } = await this.pool.query<{ table_name: string; shard_key: string; chosen: Record<string, number> }>('SELECT table_name, shard_key, chosen FROM pgtide.restore_requests');
    return rows.map((r) => ({ table: r.table_name, shardKey: r.shard_key, chosen: r.chosen }));
  }

  async overrides(): Promise<{ id: number; at: Date; table: string; parameter: string; userValue: number | null; chosenValue: number; pinned: boolean; reason: string }[]> {
    const { rows } = await this.pool.query<{ id: number; at: Date; table_name: string; parameter: string; user_value: number | null; chosen_value: number; pinned: boolean; reason: string }>(
      'SELECT id, at, table_name, parameter, user_value, chosen_value, pinned, reason FROM pgtide.overrides ORDER BY id');
    return rows.map((r) => ({ id: r.id, at: r.at, table: r.table_name, parameter: r.parameter, userValue: r.user_value, chosenValue: r.chosen_value, pinned: r.pinned, reason: r.reason }));
  }

  // ---- actions (cooldowns) and the log
  /** `otherPartitionId`: a split's new right piece or a merge's removed partition; `share`: a split's left share by key samples. */
  async recordAction(a: ActionRecord & { partitionId?: number; otherPartitionId?: number; share?: number; planId?: string; step?: number; detail: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO pgtide.autopilot_actions (at, kind, partition_id, lo, hi, at_hash, from_shard, to_shard, plan_id, step, detail, other_partition_id, share)
       VALUES (to_timestamp($1::float8 / 1000), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [a.atMs, a.kind, a.partitionId ?? null, a.lo?.toString() ?? null, a.hi?.toString() ?? null, a.at?.toString() ?? null,
        a.fromShard ?? a.shardId ?? null, a.toShard ?? null, a.planId ?? null, a.step ?? null, a.detail, a.otherPartitionId ?? null,
        a.share !== undefined && Number.isFinite(a.share) ? a.share : null]);
  }

  /** The autopilot's splits and merges since `sinceMs` that name both partitions, in order (history follows them). */
  async lineage(sinceMs: number): Promise<LineageEvent[]> {
    const { rows } = await this.pool.query<{ at: Date; kind: 'split' | 'merge'; partition_id: number; other_partition_id: number; share: number | null; lo: string | null; hi: string | null; at_hash: string | null }>(
      `SELECT at, kind, partition_id, other_partition_id, share, lo::text, hi::text, at_hash::text FROM pgtide.autopilot_actions
        WHERE kind IN ('split', 'merge') AND partition_id IS NOT NULL AND other_partition_id IS NOT NULL AND at >= to_timestamp($1::float8 / 1000)
        ORDER BY at, id`, [sinceMs]);
    return rows.map((r) => ({
      kind: r.kind, atMs: r.at.getTime(), partitionId: r.partition_id, otherId: r.other_partition_id,
      ...(r.share !== null ? { share: r.share } : {}),
      ...(r.lo !== null ? { lo: BigInt(r.lo) } : {}), ...(r.hi !== null ? { hi: BigInt(r.hi) } : {}), ...(r.at_hash !== null ? { at: BigInt(r.at_hash) } : {}),
    }));
  }

  async actions(sinceMs: number): Promise<ActionRecord[]> {
    const { rows } = await this.pool.query<{ at: Date; kind: ActionRecord['kind']; lo: string | null; hi: string | null; at_hash: string | null; from_shard: number | null; to_shard: number | null }>(
      'SELECT at, kind, lo::text, hi::text, at_hash::text, from_shard, to_shard FROM pgtide.autopilot_actions WHERE at >= to_timestamp($1::float8 / 1000) ORDER BY id', [sinceMs]);
    return rows.map((r) => ({
      kind: r.kind, atMs: r.at.getTime(),
      ...(r.lo !== null ? { lo: BigInt(r.lo) } : {}), ...(r.hi !== null ? { hi: BigInt(r.hi) } : {}), ...(r.at_hash !== null ? { at: BigInt(r.at_hash) } : {}),
      ...(r.from_shard !== null ? { fromShard: r.from_shard, shardId: r.from_shard } : {}), ...(r.to_shard !== null ? { toShard: r.to_shard } : {}),
    }));
  }

  async log(level: 'info' | 'warn', message: string): Promise<void> {
    await this.pool.query('INSERT INTO pgtide.autopilot_log (level, message) VALUES ($1, $2)', [level, message]);
    await this.pool.query("DELETE FROM pgtide.autopilot_log WHERE at < now() - interval '7 days'");
  }

  async recentLog(limit = 50): Promise<{ at: Date; level: string; message: string }[]> {
    const { rows } = await this.pool.query<{ at: Date; level: string; message: string }>('SELECT at, level, message FROM pgtide.autopilot_log ORDER BY id DESC LIMIT $1', [limit]);
    return rows;
  }

  /** Partitions with a mover job that is not finished (the jobs table exists once the mover's migration ran). */
  async busyPartitions(): Promise<Map<number, { jobId: number | string; toShard?: number }>> {
    const out = new Map<number, { jobId: number | string; toShard?: number }>();
    const { rows: exists } = await this.pool.query<{ ok: boolean }>("SELECT to_regclass('pgtide.jobs') IS NOT NULL AS ok");
    if (exists[0]?.ok) {
      const { rows } = await this.pool.query<{ id: number; partition_id: number; target_shard: number | null }>(
        "SELECT id, partition_id, target_shard FROM pgtide.jobs WHERE state NOT IN ('done', 'rolled_back')");
      for (const r of rows) out.set(r.partition_id, { jobId: r.id, ...(r.target_shard !== null ? { toShard: r.target_shard } : {}) });
    }
    const { rows } = await this.pool.query<{ id: number; state: string }>("SELECT id, state FROM pgtide.partitions WHERE state <> 'active'");
    for (const r of rows) if (!out.has(r.id)) out.set(r.id, { jobId: `partition ${r.state}` });
    return out;
  }
}
