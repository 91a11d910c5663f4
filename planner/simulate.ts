// Simulator: replays a load trace against a cluster model and scores placement policies side by side.
//
// The key space is cut into `cells` equal hash ranges, the finest grain a split can reach (a cell
// stands for a handful of keys). The trace gives each cell's load per tick; a partition is a run
// of cells, and its load is their sum. Each tick:
//   1. the policy looks at what it may know (loads up to the previous tick, its forecasts) and
//      returns a plan; the steps due before the next tick are executed in order (a step whose
//      dependency failed is skipped);
//   2. moves run on a mover with `maxConcurrentMoves` slots. A move copies the partition's bytes at
//      the mover's throughput, throttled by the source's utilization (the real mover backs off
//      when foreground latency rises), adds `moverOverhead` of capacity to source and target while
//      it copies, and ends with a cutover pause. Splits and merges are metadata only.
//   3. the tick is scored piecewise between job completions: a shard's p99 follows
//      p99 = base / (1 − u); any second in which some shard is over the SLO counts once, and
//      each cutover pause longer than the SLO counts its length.
// Policies: static (provisioned for the replay's peak, never changes), reactive (the planner fed
// the last 30 minutes' maximum as a flat "forecast": thresholds on current load, like
// CockroachDB's load-based splitting, with the planner's own hysteresis and cooldowns), predictive
// (the planner fed a ForecastProvider) and oracle (the planner fed the true future).
// Thrash: an action that undoes one taken less than `thrashWindowSeconds` earlier (merge back a
// split boundary, re-split a merged one, move a range back to the shard it left, drain a server
// after adding one or add one after draining).
// Campaign readiness: for every announced event, the layout is checked against the event's
// first-hour load per cell at the SLO utilization; the lead is how long before the start the
// layout had been continuously adequate (capped at 24 h).
import { HASH_END, HASH_MIN, type Partition, type RoutingTable } from '../config/types.js';
import { resolveKnobs, shardUtilizationCap, utilizationForLatency } from './decider.js';
import type { AnnouncedEvent, ForecastProvider, LoadHistory } from './forecast-provider.js';
import { planResharding } from './plan.js';
import { explainPlan } from './explain.js';
import type { ActionRecord, PartitionForecast, PlannerKnobs, PlanStep, QuantileStep, RunningJob, Thresholds } from './types.js';

const SPAN = 1n << 64n;
/** Campaign readiness looks at the first hour of each event. */
export const CAMPAIGN_NEED_SECONDS = 3600;
/** Readiness is tracked from this long before an event. */
export const READINESS_LOOKAHEAD_SECONDS = 24 * 3600;
/** The reactive policy's "forecast" is the maximum of the last 30 minutes. */
export const REACTIVE_WINDOW_SECONDS = 30 * 60;
/** Key samples weigh each cell by its load over the last hour. */
export const SAMPLE_WINDOW_SECONDS = 3600;

export interface SimTrace {
  startMs: number;
  tickSeconds: number;
  ticks: number;
  cells: number;
  /** load[tick * cells + cell] */
  load: Float32Array;
  /** Bytes per cell. */
  cellBytes: Float64Array;
  /** Announced events (hash ranges on cell boundaries). */
  events: AnnouncedEvent[];
  /** Replay starts at this tick; earlier ticks are history for the forecaster. */
  trainTicks: number;
  /** Equal-width partitions the dynamic policies start from. */
  initialPartitions: number;
}

export interface ClusterModel {
  shardCapacity: number;
  initialShards: number;
  spareShards: number;
  baseP99Ms: number;
  sloP99Ms: number;
  moverBytesPerSec: number;
  cutoverSeconds: number;
  /** Extra utilization a copy puts on source and target. */
  moverOverhead: number;
  thresholds: Thresholds;
  knobs?: Partial<PlannerKnobs>;
  horizonSeconds: number;
  forecastStepSeconds: number;
  thrashWindowSeconds: number;
}

export type PolicyName = 'static' | 'reactive' | 'predictive' | 'oracle';
export const POLICY_NAMES: PolicyName[] = ['static', 'reactive', 'predictive', 'oracle'];

export interface CampaignReadiness {
  name: string;
  startMs: number;
  /** Minutes the capacity was ready before the start (capped at 24 h); null if not ready at the start. */
  readyMinutesBefore: number | null;
}

export interface PolicyResult {
  slo_violation_seconds: number;
  server_hours: number;
  partition_hours: number;
  bytes_moved: number;
  jobs: number;
  thrash: number;
  shard_changes: number;
  forecast_misses: number;
  capacity_requests: number;
  peak_servers: number;
  campaigns: CampaignReadiness[];
}

export type ForecastProviderFactory = (history: LoadHistory, events: AnnouncedEvent[]) => ForecastProvider;

export interface SimulateOptions {
  policies?: PolicyName[];
  /** Forecaster for the predictive policy. */
  predictive?: ForecastProviderFactory;
  /** Receives one line per executed step, thrash and violating tick (for debugging a policy). */
  log?: (policy: PolicyName, line: string) => void;
}

export function cellLo(c: number, cells: number): bigint {
  return c >= cells ? HASH_END : HASH_MIN + (SPAN * BigInt(c)) / BigInt(cells);
}

/** Nearest cell boundary to a hash (split points snap to cells). */
export function hashToCell(h: bigint, cells: number): number {
  if (h >= HASH_END) return cells;
  return Number(((h - HASH_MIN) * BigInt(cells) + SPAN / 2n) / SPAN);
}

/** Cumulative load over cells, per tick: pre[t * (cells + 1) + c] = Σ load[t][0..c). */
export function prefixSums(trace: SimTrace): Float64Array {
  const w = trace.cells + 1;
  const pre = new Float64Array(trace.ticks * w);
  for (let t = 0; t < trace.ticks; t++) {
    let acc = 0;
    const row = t * trace.cells;
    for (let c = 0; c < trace.cells; c++) {
      pre[t * w + c] = acc;
      acc += trace.load[row + c]!;
    }
    pre[t * w + trace.cells] = acc;
  }
  return pre;
}

interface SimPart {
  id: number;
  c0: number;
  c1: number;
  shard: number;
  busy: boolean;
}

interface SimShard {
  id: number;
  capacity: number;
  state: 'active' | 'draining';
}

interface MoveJob {
  part: SimPart;
  from: number;
  to: number;
  bytes: number;
  endMs: number;
}

/** LoadHistory over a trace that refuses to show the future. */
export function traceHistory(trace: SimTrace, pre: Float64Array): LoadHistory {
  const w = trace.cells + 1;
  const tickMs = trace.tickSeconds * 1000;
  let horizonTick = 0;
  const bytesPre = new Float64Array(trace.cells + 1);
  for (let c = 0; c < trace.cells; c++) bytesPre[c + 1] = bytesPre[c]! + trace.cellBytes[c]!;
  return {
    startMs: trace.startMs,
    tickSeconds: trace.tickSeconds,
    visibleTicks(nowMs: number) {
      horizonTick = Math.max(0, Math.min(trace.ticks, Math.floor((nowMs - trace.startMs) / tickMs)));
      return horizonTick;
    },
    series(lo: bigint, hi: bigint) {
      const c0 = hashToCell(lo, trace.cells);
      const c1 = hashToCell(hi, trace.cells);
      return (tick: number) => {
        if (tick >= horizonTick || tick < 0) {
          if (tick < 0) return 0;
          throw new Error(`simulator: forecaster read tick ${tick}, but only ticks before ${horizonTick} are history`);
        }
        return pre[tick * w + c1]! - pre[tick * w + c0]!;
      };
    },
    rangeBytes(lo: bigint, hi: bigint) {
      return bytesPre[hashToCell(hi, trace.cells)]! - bytesPre[hashToCell(lo, trace.cells)]!;
    },
  };
}

/** The true future, for the oracle policy. */
function oracleProvider(trace: SimTrace, pre: Float64Array): ForecastProvider {
  const w = trace.cells + 1;
  const tickMs = trace.tickSeconds * 1000;
  const bytesPre = new Float64Array(trace.cells + 1);
  for (let c = 0; c < trace.cells; c++) bytesPre[c + 1] = bytesPre[c]! + trace.cellBytes[c]!;
  return {
    name: 'oracle',
    forecast(req) {
      const T = Math.floor((req.nowMs - trace.startMs) / tickMs);
      const c0 = hashToCell(req.lo, trace.cells);
      const c1 = hashToCell(req.hi, trace.cells);
      const r = Math.max(1, Math.round(req.stepSeconds / trace.tickSeconds));
      const steps: QuantileStep[] = [];
      for (let s = 0; s < req.horizonSteps; s++) {
        let peak = 0;
        let sum = 0;
        for (let j = 0; j < r; j++) {
          const tick = Math.min(trace.ticks - 1, T + s * r + j);
          const v = pre[tick * w + c1]! - pre[tick * w + c0]!;
          peak = Math.max(peak, v);
          sum += v;
        }
        steps.push({ mean: sum / r, p10: sum / r, p50: peak, p90: peak, p99: peak });
      }
      return { partitionId: req.partitionId, startMs: trace.startMs + T * tickMs, stepSeconds: r * trace.tickSeconds, steps, sizeBytes: bytesPre[c1]! - bytesPre[c0]!, sizeRows: 0 };
    },
  };
}

export function simulate(trace: SimTrace, model: ClusterModel, opts: SimulateOptions = {}): Record<string, PolicyResult> {
  const pre = prefixSums(trace);
  const out: Record<string, PolicyResult> = {};
  for (const name of opts.policies ?? POLICY_NAMES) {
    out[name] = runPolicy(name, trace, pre, model, opts);
  }
  return out;
}

function runPolicy(name: PolicyName, trace: SimTrace, pre: Float64Array, model: ClusterModel, opts: SimulateOptions): PolicyResult {
  const cells = trace.cells;
  const w = cells + 1;
  const tickMs = trace.tickSeconds * 1000;
  const uSlo = utilizationForLatency(model.baseP99Ms, model.sloP99Ms);
  const uCap = shardUtilizationCap(model.thresholds);
  const knobs = resolveKnobs(model.knobs);
  const stepSeconds = model.forecastStepSeconds;
  const horizonSteps = Math.max(1, Math.round(model.horizonSeconds / stepSeconds));
  const rangeAt = (tick: number, c0: number, c1: number) => pre[tick * w + c1]! - pre[tick * w + c0]!;
  const bytesPre = new Float64Array(cells + 1);
  for (let c = 0; c < cells; c++) bytesPre[c + 1] = bytesPre[c]! + trace.cellBytes[c]!;
  const partBytes = (p: { c0: number; c1: number }) => bytesPre[p.c1]! - bytesPre[p.c0]!;
  const res: PolicyResult = {
    slo_violation_seconds: 0,
    server_hours: 0,
    partition_hours: 0,
    bytes_moved: 0,
    jobs: 0,
    thrash: 0,
    shard_changes: 0,
    forecast_misses: 0,
    capacity_requests: 0,
    peak_servers: 0,
    campaigns: [],
  };

  // ---- initial layout ----
  let nextPartId = 1;
  let parts: SimPart[] = [];
  const shards = new Map<number, SimShard>();
  const spare: number[] = [];
  if (name === 'static') {
    const layout = staticLayout(trace, pre, model, uCap);
    for (let s = 1; s <= layout.shards; s++) shards.set(s, { id: s, capacity: model.shardCapacity, state: 'active' });
    for (const p of layout.parts) parts.push({ id: nextPartId++, c0: p.c0, c1: p.c1, shard: p.shard, busy: false });
  } else {
    for (let s = 1; s <= model.initialShards; s++) shards.set(s, { id: s, capacity: model.shardCapacity, state: 'active' });
    for (let s = model.initialShards + 1; s <= model.initialShards + model.spareShards; s++) spare.push(s);
    const n = Math.max(1, Math.min(trace.initialPartitions, cells));
    for (let i = 0; i < n; i++) {
      parts.push({ id: nextPartId++, c0: Math.round((i * cells) / n), c1: Math.round(((i + 1) * cells) / n), shard: 1 + (i % model.initialShards), busy: false });
    }
  }

  const history: ActionRecord[] = [];
  const running: MoveJob[] = [];
  const queue: { part: SimPart; to: number }[] = [];
  const provider: ForecastProvider | undefined =
    name === 'predictive' ? (opts.predictive ?? (() => { throw new Error('simulate: the predictive policy needs a forecast provider'); }))(traceHistory(trace, pre), trace.events) : name === 'oracle' ? oracleProvider(trace, pre) : undefined;
  const thrashMs = model.thrashWindowSeconds * 1000;
  const log = opts.log ? (line: string) => opts.log!(name, line) : undefined;

  // ---- campaign readiness ----
  const campaigns = trace.events
    .filter((e) => e.startMs >= trace.startMs + trace.trainTicks * tickMs && e.startMs < trace.startMs + trace.ticks * tickMs)
    .map((e) => {
      const startTick = Math.floor((e.startMs - trace.startMs) / tickMs);
      const endTick = Math.min(trace.ticks, startTick + Math.max(1, Math.round(CAMPAIGN_NEED_SECONDS / trace.tickSeconds)));
      const need = new Float64Array(cells + 1);
      for (let c = 0; c < cells; c++) {
        let m = 0;
        for (let t = startTick; t < endTick; t++) m = Math.max(m, trace.load[t * cells + c]!);
        need[c + 1] = need[c]! + m;
      }
      return { e, need, readySince: undefined as number | undefined, done: false };
    });
  const checkReadiness = (atMs: number) => {
    for (const c of campaigns) {
      if (c.done || c.e.startMs - atMs > READINESS_LOOKAHEAD_SECONDS * 1000) continue;
      if (atMs >= c.e.startMs) {
        c.done = true;
        res.campaigns.push({ name: c.e.name, startMs: c.e.startMs, readyMinutesBefore: c.readySince === undefined ? null : (c.e.startMs - c.readySince) / 60000 });
        continue;
      }
      const perShard = new Map<number, number>();
      for (const p of parts) perShard.set(p.shard, (perShard.get(p.shard) ?? 0) + c.need[p.c1]! - c.need[p.c0]!);
      let ok = true;
      for (const [sid, load] of perShard) if (load > shards.get(sid)!.capacity * uSlo) ok = false;
      if (!ok) c.readySince = undefined;
      else if (c.readySince === undefined) c.readySince = atMs;
    }
  };

  // ---- thrash bookkeeping ----
  const simHistory: ActionRecord[] = [];
  const record = (a: ActionRecord) => {
    const within = (h: ActionRecord) => a.atMs - h.atMs < thrashMs;
    let thrash = false;
    if (a.kind === 'merge') thrash = simHistory.some((h) => h.kind === 'split' && h.at === a.at && within(h));
    if (a.kind === 'split') thrash = simHistory.some((h) => h.kind === 'merge' && h.at === a.at && within(h));
    if (a.kind === 'move') thrash = simHistory.some((h) => h.kind === 'move' && h.fromShard === a.toShard && h.lo! < a.hi! && a.lo! < h.hi! && within(h));
    if (a.kind === 'add-shard') thrash = simHistory.some((h) => h.kind === 'drain-shard' && within(h));
    if (a.kind === 'drain-shard') thrash = simHistory.some((h) => h.kind === 'add-shard' && within(h));
    if (thrash) {
      res.thrash++;
      log?.(`thrash: ${a.kind} ${a.shardId ?? ''} ${a.lo ?? ''}..${a.hi ?? ''} at ${new Date(a.atMs).toISOString()}`);
    }
    simHistory.push(a);
    history.push(a);
    if (simHistory.length > 4096) simHistory.splice(0, 2048);
  };

  const findPart = (lo: bigint, hi: bigint) => {
    const c0 = hashToCell(lo, cells);
    const c1 = hashToCell(hi, cells);
    return parts.find((p) => p.c0 === c0 && p.c1 === c1);
  };
  const sortParts = () => parts.sort((a, b) => a.c0 - b.c0);

  function execute(step: PlanStep, nowMs: number, tick: number): boolean {
    const a = step.action;
    switch (a.kind) {
      case 'split': {
        const p = findPart(step.range.lo, step.range.hi);
        const c = hashToCell(a.at, cells);
        if (!p || p.busy || c <= p.c0 || c >= p.c1) return false;
        parts.push({ id: nextPartId++, c0: c, c1: p.c1, shard: p.shard, busy: false });
        p.c1 = c;
        sortParts();
        res.jobs++;
        record({ kind: 'split', atMs: nowMs, lo: cellLo(p.c0, cells), hi: cellLo(parts.find((x) => x.c0 === c)!.c1, cells), at: cellLo(c, cells) });
        return true;
      }
      case 'merge': {
        const c0 = hashToCell(step.range.lo, cells);
        const c1 = hashToCell(step.range.hi, cells);
        const a1 = parts.find((p) => p.c0 === c0);
        const b1 = a1 && parts.find((p) => p.c0 === a1.c1);
        if (!a1 || !b1 || b1.c1 !== c1 || a1.shard !== b1.shard || a1.busy || b1.busy) return false;
        const at = a1.c1;
        a1.c1 = b1.c1;
        parts = parts.filter((p) => p !== b1);
        res.jobs++;
        record({ kind: 'merge', atMs: nowMs, lo: cellLo(a1.c0, cells), hi: cellLo(a1.c1, cells), at: cellLo(at, cells) });
        return true;
      }
      case 'move': {
        const p = findPart(step.range.lo, step.range.hi);
        const to = shards.get(a.toShard);
        if (!p || p.busy || !to || to.state !== 'active' || p.shard === a.toShard) return false;
        p.busy = true;
        queue.push({ part: p, to: a.toShard });
        record({ kind: 'move', atMs: nowMs, lo: cellLo(p.c0, cells), hi: cellLo(p.c1, cells), fromShard: p.shard, toShard: a.toShard });
        return true;
      }
      case 'add-shard': {
        const i = spare.indexOf(a.spare);
        if (i < 0) return false;
        spare.splice(i, 1);
        shards.set(a.spare, { id: a.spare, capacity: model.shardCapacity, state: 'active' });
        res.shard_changes++;
        record({ kind: 'add-shard', atMs: nowMs, shardId: a.spare });
        return true;
      }
      case 'drain-shard': {
        const s = shards.get(a.shard);
        if (!s || s.state !== 'active') return false;
        s.state = 'draining';
        res.shard_changes++;
        record({ kind: 'drain-shard', atMs: nowMs, shardId: a.shard });
        return true;
      }
      case 'needs-capacity':
        res.capacity_requests++;
        void tick;
        return false;
    }
  }

  const shardLoads = (tick: number): Map<number, number> => {
    const m = new Map<number, number>();
    for (const s of shards.keys()) m.set(s, 0);
    for (const p of parts) m.set(p.shard, m.get(p.shard)! + rangeAt(tick, p.c0, p.c1));
    return m;
  };

  function startQueued(atMs: number, tick: number): void {
    const maxJobs = knobs.maxConcurrentMoves;
    while (running.length < maxJobs && queue.length) {
      const q = queue.shift()!;
      const loads = shardLoads(tick);
      const src = shards.get(q.part.shard)!;
      const u = loads.get(src.id)! / src.capacity;
      // The mover throttles itself against foreground latency: full speed up to 50 % utilization.
      const throttle = Math.min(1, Math.max(0.25, (1 - u) / 0.5));
      const bytes = partBytes(q.part);
      const seconds = bytes / (model.moverBytesPerSec * throttle) + model.cutoverSeconds;
      running.push({ part: q.part, from: q.part.shard, to: q.to, bytes, endMs: atMs + seconds * 1000 });
    }
  }

  function releaseDrained(): void {
    for (const s of [...shards.values()]) {
      if (s.state !== 'draining') continue;
      if (parts.some((p) => p.shard === s.id) || running.some((j) => j.to === s.id || j.from === s.id) || queue.some((q) => q.to === s.id)) continue;
      shards.delete(s.id);
      spare.push(s.id);
      spare.sort((a, b) => a - b);
    }
  }

  // ---- replay ----
  const windowTicks = Math.max(1, Math.round(REACTIVE_WINDOW_SECONDS / trace.tickSeconds));
  const sampleTicks = Math.max(1, Math.round(SAMPLE_WINDOW_SECONDS / trace.tickSeconds));
  for (let tick = Math.max(1, trace.trainTicks); tick < trace.ticks; tick++) {
    const nowMs = trace.startMs + tick * tickMs;
    if (name !== 'static') {
      const plan = decide(tick, nowMs);
      res.forecast_misses += plan.forecastMiss.length;
      if (log && process.env['PGTIDE_SIM_EXPLAIN'] && new Date(nowMs).toISOString().startsWith(process.env['PGTIDE_SIM_EXPLAIN'])) {
        for (const l of explainPlan(plan)) log(`  | ${l}`);
      }
      const ok = new Set<number>();
      for (const step of plan.steps) {
        if (step.startAtMs >= nowMs + tickMs) continue;
        if (step.dependsOn.some((d) => !ok.has(d))) continue;
        if (execute(step, nowMs, tick)) {
          ok.add(step.n);
          log?.(`${new Date(nowMs).toISOString()} ${step.action.kind} ${JSON.stringify(step.action, (_k, v) => (typeof v === 'bigint' ? String(v) : v))} [${step.trigger}/${step.startReason}] shards=${shards.size}${step.predicted ? ` predicted=${step.predicted.p90.toFixed(0)}/${step.predicted.limit.toFixed(0)} at ${new Date(step.predicted.atMs).toISOString().slice(11, 16)}` : ''}${step.deadlineMs !== undefined ? ` deadline=${new Date(step.deadlineMs).toISOString().slice(11, 16)}` : ''}`);
        }
      }
    }
    checkReadiness(nowMs);
    if (log && tick % Math.round(3600 / trace.tickSeconds) === 0) {
      const total = rangeAt(tick, 0, cells);
      log(`${new Date(nowMs).toISOString()} HOUR servers=${shards.size} parts=${parts.length} load=${total.toFixed(0)} ideal=${(total / (model.shardCapacity * uCap)).toFixed(1)} running=${running.length} queued=${queue.length}`);
    }
    startQueued(nowMs, tick);
    // Score the tick piecewise between job completions.
    let cursor = nowMs;
    const end = nowMs + tickMs;
    for (;;) {
      const next = running.reduce((a, j) => Math.min(a, j.endMs), Infinity);
      const until = Math.min(end, next);
      const dt = (until - cursor) / 1000;
      if (dt > 0) {
        const loads = shardLoads(tick);
        for (const j of running) {
          const from = shards.get(j.from);
          const to = shards.get(j.to);
          if (from) loads.set(j.from, loads.get(j.from)! + model.moverOverhead * from.capacity);
          if (to) loads.set(j.to, loads.get(j.to)! + model.moverOverhead * to.capacity);
        }
        let over = false;
        for (const [sid, load] of loads) if (load / shards.get(sid)!.capacity > uSlo) over = true;
        if (over) {
          res.slo_violation_seconds += dt;
          if (log) {
            const worst = [...loads].map(([sid, l]) => `${sid}:${(l / shards.get(sid)!.capacity).toFixed(2)}`).join(' ');
            log(`${new Date(cursor).toISOString()} VIOLATION ${dt.toFixed(0)}s running=${running.length} queued=${queue.length} ${worst}`);
          }
        }
        res.server_hours += (shards.size * dt) / 3600;
        res.partition_hours += (parts.length * dt) / 3600;
        res.peak_servers = Math.max(res.peak_servers, shards.size);
      }
      if (next >= end) break;
      cursor = until;
      for (let i = running.length - 1; i >= 0; i--) {
        const j = running[i]!;
        if (j.endMs > until) continue;
        running.splice(i, 1);
        j.part.shard = j.to;
        j.part.busy = false;
        res.bytes_moved += j.bytes;
        res.jobs++;
        if (model.cutoverSeconds * 1000 > model.sloP99Ms) res.slo_violation_seconds += model.cutoverSeconds;
      }
      releaseDrained();
      checkReadiness(until);
      startQueued(until, tick);
    }
    releaseDrained();
  }
  for (const c of campaigns) if (!c.done) res.campaigns.push({ name: c.e.name, startMs: c.e.startMs, readyMinutesBefore: c.readySince === undefined ? null : (c.e.startMs - c.readySince) / 60000 });
  res.server_hours = round(res.server_hours, 2);
  res.partition_hours = round(res.partition_hours, 1);
  res.slo_violation_seconds = round(res.slo_violation_seconds, 1);
  return res;

  function decide(tick: number, nowMs: number) {
    const routing: RoutingTable = {
      version: tick,
      shards: [...shards.values()].map((s) => ({ id: s.id, url: '', state: s.state })),
      keyspaces: [{ id: 1, name: 'sim', family: 'int' }],
      tables: [],
      partitions: parts.map(
        (p): Partition => ({ id: p.id, keyspaceId: 1, lo: cellLo(p.c0, cells), hi: cellLo(p.c1, cells), shardId: p.shard, state: 'active' }),
      ),
    };
    const forecasts: PartitionForecast[] = [];
    const prev = tick - 1;
    for (const p of parts) {
      const lo = cellLo(p.c0, cells);
      const hi = cellLo(p.c1, cells);
      if (name === 'reactive') {
        let m = 0;
        for (let t = Math.max(0, tick - windowTicks); t < tick; t++) m = Math.max(m, rangeAt(t, p.c0, p.c1));
        const step = { mean: m, p10: m, p50: m, p90: m, p99: m };
        forecasts.push({ partitionId: p.id, startMs: nowMs, stepSeconds, steps: Array.from({ length: horizonSteps }, () => step), sizeBytes: partBytes(p), sizeRows: 0 });
      } else {
        const f = provider!.forecast({ partitionId: p.id, lo, hi, nowMs, stepSeconds, horizonSteps });
        if (f) forecasts.push(f);
      }
    }
    const keySamples = parts.map((p) => {
      const samples = [];
      for (let c = p.c0; c < p.c1; c++) {
        let wgt = 0;
        if (name === 'oracle') {
          for (let t = tick; t < Math.min(trace.ticks, tick + horizonSteps * Math.round(stepSeconds / trace.tickSeconds)); t++) wgt += trace.load[t * cells + c]!;
        } else {
          for (let t = Math.max(0, tick - sampleTicks); t < tick; t++) wgt += trace.load[t * cells + c]!;
        }
        samples.push({ hash: cellLo(c, cells) + (cellLo(c + 1, cells) - cellLo(c, cells)) / 2n, weight: wgt });
      }
      return { partitionId: p.id, samples };
    });
    const runningJobs: RunningJob[] = [
      ...running.map((j, i) => ({ jobId: `run-${i}`, partitionId: j.part.id, kind: 'move' as const, toShard: j.to })),
      ...queue.map((q, i) => ({ jobId: `queued-${i}`, partitionId: q.part.id, kind: 'move' as const, toShard: q.to })),
    ];
    const cutoff = nowMs - 24 * 3600 * 1000;
    while (history.length && history[0]!.atMs < cutoff) history.shift();
    return planResharding({
      nowMs,
      routing,
      shards: [...shards.values()].map((s) => ({ shardId: s.id, capacity: s.capacity })),
      spareShards: spare.map((id) => ({ shardId: id, capacity: model.shardCapacity })),
      forecasts,
      keySamples,
      sizes: parts.map((p) => ({ partitionId: p.id, bytes: partBytes(p), rows: 0 })),
      thresholds: model.thresholds,
      knobs: model.knobs,
      history,
      mover: { throughputBytesPerSec: model.moverBytesPerSec, cutoverSeconds: model.cutoverSeconds },
      runningJobs,
      actual: prev >= 0 ? parts.map((p) => ({ partitionId: p.id, load: rangeAt(prev, p.c0, p.c1), ...(prev >= 1 ? { previous: rangeAt(prev - 1, p.c0, p.c1) } : {}) })) : [],
    });
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Static provisioning for the replay's peak: enough shards for the highest total load at the
 * planning utilization cap, partitions cut so each cell-wise peak stays under the split fill, and
 * partitions spread over shards largest-first onto the least loaded shard.
 */
export function staticLayout(trace: SimTrace, pre: Float64Array, model: ClusterModel, uCap: number): { shards: number; parts: { c0: number; c1: number; shard: number }[] } {
  const w = trace.cells + 1;
  let peakTotal = 0;
  const cellPeak = new Float64Array(trace.cells);
  for (let t = trace.trainTicks; t < trace.ticks; t++) {
    peakTotal = Math.max(peakTotal, pre[t * w + trace.cells]!);
    for (let c = 0; c < trace.cells; c++) cellPeak[c] = Math.max(cellPeak[c]!, trace.load[t * trace.cells + c]!);
  }
  const nShards = Math.max(1, Math.ceil(peakTotal / (model.shardCapacity * uCap)));
  const knobs = resolveKnobs(model.knobs);
  const limit = model.thresholds.partitionMaxLoad * knobs.splitFill;
  const cuts: { c0: number; c1: number; peak: number }[] = [];
  let c0 = 0;
  let acc = 0;
  for (let c = 0; c < trace.cells; c++) {
    if (c > c0 && acc + cellPeak[c]! > limit) {
      cuts.push({ c0, c1: c, peak: acc });
      c0 = c;
      acc = 0;
    }
    acc += cellPeak[c]!;
  }
  cuts.push({ c0, c1: trace.cells, peak: acc });
  const loads = new Float64Array(nShards);
  const order = cuts.map((_, i) => i).sort((a, b) => cuts[b]!.peak - cuts[a]!.peak);
  const shardOf = new Array<number>(cuts.length);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < nShards; s++) if (loads[s]! < loads[best]!) best = s;
    loads[best] = loads[best]! + cuts[i]!.peak;
    shardOf[i] = best + 1;
  }
  return { shards: nShards, parts: cuts.map((c, i) => ({ c0: c.c0, c1: c.c1, shard: shardOf[i]! })) };
}
