// The planner: forecasts + routing table + capacities + thresholds → an ordered, scheduled Plan.
//
// Algorithm, in the order it runs (each phase records why it did not act):
// 1. Series. Every partition's forecast is laid on one grid from `now` (the first forecast's step):
//    its p90 (upper) and its centre (median, or mean where higher). The planning load is two-sided
//    (load.ts): the centre is held to a limit, the p90 to that limit × hard/cap, where hard is
//    upperFill of the utilization that meets the target p99; without an interval (centre = p90)
//    this is the p90 itself, and upperFill 0 makes it the p90 always. A NaN or missing forecast
//    freezes the partition (no step touches it; its measured load, if any, still counts on its
//    shard). A partition with a running job is locked and counts on the job's target shard.
//    Reactive fallback: when the load measured in the last interval exceeds the forecast, the
//    measured value stands in for the next missHoldSeconds; if that crosses a limit the forecast
//    did not, the miss is recorded and the steps it causes start now. A surge (the measured load
//    rose more than surgeRise over the interval before) stands in one interval further: measured
//    + that rise, the load by the time the next measurement could be acted on.
// 2. Splits (decider + finder): determine_sharding_strategy on the peak of the partition's
//    planning load; the piece count from the same peak, the cut points from load-weighted key
//    samples. Size and throughput limits split too. Pieces stay on their shard: a split is
//    metadata only. A surging partition is cut into even pieces that copy in surgePieceSeconds.
// 3. Merges: adjacent partitions both expected below the minimum for the whole horizon, whose p90
//    sum stays below (1 − hysteresis) × maximum, and whose boundary was not created within the
//    cooldown. Different owners → move the smaller one first if the other shard has room.
// 4. Placement: a shard whose planning load exceeds capacity × utilization cap at any step within
//    placementLookaheadSeconds (long enough to finish moves in a quiet hour, short enough not to
//    pay for the afternoon peak from the early morning) sheds partitions; the cheapest (fewest
//    bytes) move that fixes it wins, to the target with the lowest resulting peak (which balances
//    load). A target must keep the partition for the whole horizon below (1 − hysteresis) × cap
//    (else it sheds it, or another, a few plans later: two moves for one). No target → a spare
//    shard. No spare → a `needs-capacity` step and no moves at all (nothing half-done) — unless
//    the overload fits when shards may fill up to shortageFill of the latency-derived utilization
//    (targets then fill to that cap): then that plan runs and the step asks for capacity anyway.
//    Within the cooldown after a drain, spares are first held back the same way (adding one back
//    would undo the drain); one is added only if even the stretched cap does not hold the overload.
//    A shard over its cap now because of a surge sheds the surging pieces first (to a spare if they
//    fit nowhere else), one copy at a time: copies off a hot shard are throttled and each adds load.
// 5. Scale-down: with nothing to fix, the shard with the fewest bytes among those whose p90 stays
//    below the minimum utilization for drainLowSeconds is drained if the others hold its partitions
//    below (1 − hysteresis) × cap for that long. One drain at a time; never a shard added within
//    the cooldown.
// 6. Scheduling (schedule.ts) and stable numbering in start order; among steps due at the same
//    time, those answering a crossing now (and what they depend on) come first.
import type { Partition } from '../config/types.js';
import { HASH_END, HASH_MIN } from '../config/types.js';
import {
  determine_sharding_strategy,
  mergeWouldUndoSplit,
  recentAction,
  recentShardAction,
  resolveKnobs,
  shardUtilizationCap,
  splitCount,
  utilizationForLatency,
  validateThresholds,
} from './decider.js';
import { InvalidParameterError } from './errors.js';
import { aloneLoad, ShardLoad } from './load.js';
import { findSplitPoints, midpointSplit, normalizeSamples, type SplitResult, type WeightedHash } from './finder.js';
import { fmtBytes, fmtDuration, fmtHash, fmtLoad, fmtPct, fmtTime } from './format.js';
import { pickStart, type Grid } from './schedule.js';
import type {
  ActionRecord,
  ForecastMiss,
  HashRange,
  Plan,
  PlannerInput,
  PlannerKnobs,
  PlanReason,
  PlanStep,
  PredictedLoad,
  StartReason,
  StepAction,
  Thresholds,
} from './types.js';

/** A surging partition is cut into at most this many pieces at once. */
const MAX_SURGE_PIECES = 16;

/** Grid step when no forecast says otherwise: 15 min. */
export const DEFAULT_STEP_SECONDS = 15 * 60;

interface Work {
  id: number;
  keyspaceId: number;
  lo: bigint;
  hi: bigint;
  shard: number;
  bytes: number;
  rows: number;
  upper: Float64Array;
  mean: Float64Array;
  p10: Float64Array;
  p50: Float64Array;
  /** Expected peak per step: the median, or the mean where higher (load is skewed right); ≤ upper. */
  center: Float64Array;
  /** Step index where the measured load replaced the forecast (reactive), or -1. */
  missUntil: number;
  /** Set when the measured load is surging (see PlannerKnobs.surgeRise): what stands in for the forecast. */
  surge?: { actual: number; previous: number; standIn: number };
  samples: WeightedHash[];
  frozen: boolean;
  locked: boolean;
  provisional: boolean;
  /** Why this piece exists (for texts). */
  origin?: string;
}

interface ShardState {
  id: number;
  capacity: number;
  cap: number;
  draining: boolean;
  added: boolean;
  /** Holds a frozen partition: its load is uncertain, so it takes nothing new and is not drained. */
  uncertain: boolean;
  /** Planning load per step (load.ts): the same array as load.series. */
  series: Float64Array;
  load: ShardLoad;
}

interface Draft {
  key: number;
  action: StepAction;
  range: HashRange;
  bytes: number;
  seconds: number;
  deps: Draft[];
  trigger: PlanStep['trigger'];
  urgent: boolean;
  /** Start now without a deadline (finishing what an earlier plan began). */
  startNow?: boolean;
  /** Grid index of the crossing this step prevents, if any. */
  crossing?: number;
  why: string;
  predicted?: PredictedLoad;
  group: 'split' | 'merge' | 'place' | 'drain';
  startAtMs?: number;
  startReason?: StartReason;
  deadlineMs?: number;
}

function peakIndex(a: Float64Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function firstAbove(a: Float64Array, limit: number): number {
  for (let i = 0; i < a.length; i++) if (a[i]! > limit + 1e-9) return i;
  return -1;
}

function maxOf(a: Float64Array, upTo = a.length): number {
  let m = -Infinity;
  for (let i = 0; i < Math.min(upTo, a.length); i++) m = Math.max(m, a[i]!);
  return m;
}

function addInto(target: Float64Array, src: Float64Array, sign = 1): void {
  for (let i = 0; i < target.length; i++) target[i] = target[i]! + sign * src[i]!;
}

function scaled(a: Float64Array, f: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * f;
  return out;
}

/** FNV-1a over the plan's content: a stable id for `APPLY PLAN STEP n`. */
function planHash(createdAtMs: number, steps: PlanStep[]): string {
  const text = JSON.stringify({ createdAtMs, steps: steps.map((s) => ({ n: s.n, a: s.action, r: s.range, t: s.startAtMs })) }, (_k, v) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const describeRange = (lo: bigint, hi: bigint) => `[${lo === HASH_MIN ? 'min' : fmtHash(lo)}, ${hi === HASH_END ? 'max' : fmtHash(hi)})`;

/**
 * Plans splits, merges, moves and shard changes for the given forecast. Pure: the same input gives
 * the same plan. Throws InvalidThresholdsError (22023) for contradictory thresholds.
 */
export function planResharding(input: PlannerInput): Plan {
  const t = input.thresholds;
  validateThresholds(t);
  const knobs = resolveKnobs(input.knobs);
  if (!(input.mover.throughputBytesPerSec > 0)) throw new InvalidParameterError(`mover throughput must be positive, got ${input.mover.throughputBytesPerSec}`);
  const now = input.nowMs;
  const history = input.history ?? [];
  const reasons: PlanReason[] = [];
  const misses: ForecastMiss[] = [];
  const uCap = shardUtilizationCap(t);
  /** The limit for a shard's p90 (load.ts): the utilization that meets the target p99, times upperFill. */
  const uHard = utilizationForLatency(t.baseP99Ms, t.targetP99Ms) * knobs.upperFill;
  /** cap / hard limit; when the cap in use is already as high (stretched placement), the p90 is held to it. */
  const upperScaleFor = (capFraction: number) => capFraction / Math.max(capFraction, uHard);
  const newShardLoad = (capFraction: number) => {
    const l = new ShardLoad(steps);
    l.upperScale = upperScaleFor(capFraction);
    return l;
  };

  // ---- 1. grid and series ------------------------------------------------------------------
  const forecastById = new Map(input.forecasts.map((f) => [f.partitionId, f]));
  const first = input.forecasts.find((f) => f.stepSeconds > 0 && f.steps.length > 0);
  const stepMs = (first?.stepSeconds ?? DEFAULT_STEP_SECONDS) * 1000;
  let steps = 1;
  for (const f of input.forecasts) {
    if (!(f.stepSeconds > 0)) continue;
    const endMs = f.startMs + f.steps.length * f.stepSeconds * 1000;
    steps = Math.max(steps, Math.floor((endMs - now) / stepMs));
  }
  const grid: Grid = { nowMs: now, stepMs, steps };
  const holdSteps = Math.max(1, Math.ceil((knobs.missHoldSeconds * 1000) / stepMs));
  const actualById = new Map((input.actual ?? []).map((a) => [a.partitionId, a.load]));
  const previousById = new Map((input.actual ?? []).filter((a) => a.previous !== undefined).map((a) => [a.partitionId, a.previous!]));
  const sizeById = new Map((input.sizes ?? []).map((s) => [s.partitionId, s]));
  const samplesById = new Map((input.keySamples ?? []).map((k) => [k.partitionId, k.samples]));
  const jobByPartition = new Map((input.runningJobs ?? []).map((j) => [j.partitionId, j]));

  const capacityById = new Map(input.shards.map((s) => [s.shardId, s.capacity]));
  const shards = new Map<number, ShardState>();
  for (const s of input.routing.shards) {
    if (s.state !== 'active' && s.state !== 'draining') continue;
    const capacity = capacityById.get(s.id);
    if (capacity === undefined || !(capacity > 0)) throw new InvalidParameterError(`shard ${s.id} has no positive capacity in the planner input`);
    const load = newShardLoad(uCap);
    shards.set(s.id, { id: s.id, capacity, cap: capacity * uCap, draining: s.state === 'draining', added: false, uncertain: false, series: load.series, load });
  }
  const spares = input.spareShards.filter((s) => !shards.has(s.shardId) && s.capacity > 0).slice();

  const works: Work[] = [];
  for (const p of input.routing.partitions) works.push(withCenter(buildWork(p)));

  function withCenter(w: Work): Work {
    for (let i = 0; i < steps; i++) w.center[i] = Math.min(w.upper[i]!, Math.max(0, w.p50[i]!, w.mean[i]!));
    return w;
  }

  function buildWork(p: Partition): Work {
    const f = forecastById.get(p.id);
    const size = sizeById.get(p.id);
    const actual = actualById.get(p.id);
    const job = jobByPartition.get(p.id);
    const w: Work = {
      id: p.id,
      keyspaceId: p.keyspaceId,
      lo: p.lo,
      hi: p.hi,
      shard: job?.kind === 'move' && job.toShard !== undefined ? job.toShard : p.shardId,
      bytes: size?.bytes ?? f?.sizeBytes ?? 0,
      rows: size?.rows ?? f?.sizeRows ?? 0,
      upper: new Float64Array(steps),
      mean: new Float64Array(steps),
      p10: new Float64Array(steps),
      p50: new Float64Array(steps),
      center: new Float64Array(steps),
      missUntil: -1,
      samples: normalizeSamples(p.lo, p.hi, samplesById.get(p.id) ?? []),
      frozen: false,
      locked: job !== undefined || p.state !== 'active',
      provisional: false,
    };
    if (job) {
      reasons.push({ code: 'job-running', partitionId: p.id, message: `partition ${p.id} has a ${job.kind} job running (job ${job.jobId}); no step is planned on it until it finishes` });
    } else if (p.state !== 'active') {
      reasons.push({ code: 'job-running', partitionId: p.id, message: `partition ${p.id} is ${p.state}; no step is planned on it until that finishes` });
    }
    const flat = (v: number) => {
      w.upper.fill(v);
      w.mean.fill(v);
      w.p10.fill(v);
      w.p50.fill(v);
    };
    if (!f || !(f.stepSeconds > 0) || f.steps.length === 0) {
      w.frozen = true;
      reasons.push({ code: 'forecast-missing', partitionId: p.id, message: `partition ${p.id} has no forecast: no action on it${actual !== undefined ? '; its measured load counts on its shard' : ''}` });
      if (actual !== undefined && Number.isFinite(actual)) flat(actual);
      return w;
    }
    const fStepMs = f.stepSeconds * 1000;
    let bad = false;
    for (let i = 0; i < steps; i++) {
      const at = now + i * stepMs;
      const idx = Math.min(f.steps.length - 1, Math.max(0, Math.floor((at - f.startMs) / fStepMs)));
      const s = f.steps[idx]!;
      if (![s.mean, s.p10, s.p90, s.p99].every(Number.isFinite)) {
        bad = true;
        break;
      }
      w.upper[i] = s.p90;
      w.mean[i] = s.mean;
      w.p10[i] = s.p10;
      // A provider without a median centres on its mean.
      w.p50[i] = Number.isFinite(s.p50) ? s.p50 : s.mean;
    }
    if (bad || !Number.isFinite(f.sizeBytes)) {
      w.frozen = true;
      reasons.push({ code: 'forecast-nan', partitionId: p.id, message: `partition ${p.id}'s forecast contains NaN or infinite values: no action on it until the predictor recovers` });
      if (actual !== undefined && Number.isFinite(actual)) flat(actual);
      else flat(0);
      return w;
    }
    if (actual !== undefined && Number.isFinite(actual) && actual > w.upper[0]!) {
      w.missUntil = Math.min(steps, holdSteps);
      // A surge (more than surgeRise up in one interval, above the forecast) is taken to rise once
      // more by as much: acting on the last measurement alone answers a flash crowd one plan late,
      // when its shard is already hot and every copy off it is throttled.
      const previous = previousById.get(p.id);
      const surging = knobs.surgeRise > 0 && previous !== undefined && Number.isFinite(previous) && previous >= 0 && actual > previous * (1 + knobs.surgeRise);
      const standIn = surging ? actual + (actual - previous!) : actual;
      if (surging) w.surge = { actual, previous: previous!, standIn };
      for (let i = 0; i < w.missUntil; i++) {
        w.upper[i] = Math.max(w.upper[i]!, standIn);
        w.mean[i] = Math.max(w.mean[i]!, standIn);
        w.p50[i] = Math.max(w.p50[i]!, standIn);
      }
      if (standIn > t.partitionMaxLoad && (f.steps[0] ? forecastAtNow(f) : 0) <= t.partitionMaxLoad) {
        misses.push({
          partitionId: p.id,
          atMs: now,
          actual,
          forecastP90: forecastAtNow(f),
          limit: t.partitionMaxLoad,
          message: surging
            ? `partition ${p.id} measured ${fmtLoad(actual)} (up from ${fmtLoad(previous!)} the interval before) against a forecast p90 of ${fmtLoad(forecastAtNow(f))}; surging towards ${fmtLoad(standIn)}, over its limit of ${fmtLoad(t.partitionMaxLoad)}: acting now`
            : `partition ${p.id} measured ${fmtLoad(actual)} against a forecast p90 of ${fmtLoad(forecastAtNow(f))}, over its limit of ${fmtLoad(t.partitionMaxLoad)}: acting now`,
        });
      }
    }
    return w;
  }

  function forecastAtNow(f: { startMs: number; stepSeconds: number; steps: { p90: number }[] }): number {
    const idx = Math.min(f.steps.length - 1, Math.max(0, Math.floor((now - f.startMs) / (f.stepSeconds * 1000))));
    return f.steps[idx]!.p90;
  }

  for (const w of works) {
    const s = shards.get(w.shard);
    if (!s) throw new InvalidParameterError(`partition ${w.id} is owned by shard ${w.shard}, which is not an active shard in the routing table`);
    if (w.frozen) s.uncertain = true;
  }

  // Shard-level misses: the measured sum crosses the cap while the forecast sum did not.
  {
    const measured = new Map<number, number>();
    const forecastSum = new Map<number, number>();
    for (const w of works) {
      const a = actualById.get(w.id);
      const f = forecastById.get(w.id);
      if (a !== undefined && Number.isFinite(a)) measured.set(w.shard, (measured.get(w.shard) ?? 0) + a);
      if (f && f.steps.length && !w.frozen) forecastSum.set(w.shard, (forecastSum.get(w.shard) ?? 0) + forecastAtNow(f));
    }
    for (const s of shards.values()) {
      const m = measured.get(s.id) ?? 0;
      const fc = forecastSum.get(s.id) ?? 0;
      if (m > s.cap && fc <= s.cap) {
        misses.push({ shardId: s.id, atMs: now, actual: m, forecastP90: fc, limit: s.cap, message: `shard ${s.id} measured ${fmtLoad(m)} against a forecast p90 of ${fmtLoad(fc)}, over its cap of ${fmtLoad(s.cap)} (${fmtPct(uCap)} of ${fmtLoad(s.capacity)}): acting now` });
      }
    }
  }

  const drafts: Draft[] = [];
  const noted = new Set<string>();
  /** The last split of the chain that cut a piece out: a move of any piece waits for it. */
  const splitDraftOf = new Map<Work, Draft>();
  let draftKey = 0;
  let provisionalId = -1;
  const newDraft = (d: Omit<Draft, 'key'>): Draft => {
    const x = { ...d, key: draftKey++ };
    drafts.push(x);
    return x;
  };
  const cutover = input.mover.cutoverSeconds;
  const moveSeconds = (bytes: number) => bytes / input.mover.throughputBytesPerSec + cutover;
  const predictedAt = (w: { upper: Float64Array; mean: Float64Array; p10: Float64Array }, i: number, limit: number): PredictedLoad => ({
    atMs: now + i * stepMs,
    mean: w.mean[i]!,
    p10: w.p10[i]!,
    p90: w.upper[i]!,
    limit,
  });
  const loadText = (p: PredictedLoad) =>
    `${fmtLoad(p.p90)} (p90; 80 % interval ${fmtLoad(p.p10)}–${fmtLoad(p.p90)}, mean ${fmtLoad(p.mean)}) at ${fmtTime(p.atMs)}`;

  // ---- 2. splits -----------------------------------------------------------------------------
  const afterSplit: Work[] = [];
  for (const w of works) {
    if (w.frozen || w.locked) {
      afterSplit.push(w);
      continue;
    }
    // The same two-sided load as a shard's (load.ts): the expected peak against the limit, the p90
    // against limit × hard/cap. Splitting on an uncertain p90 alone makes pieces whose own forecasts
    // are less certain still (a narrow range's noise does not average out), which split again, and
    // every extra partition is one more move for each server added or drained.
    const splitLoad = aloneLoad(w, upperScaleFor(uCap));
    const pk = peakIndex(splitLoad);
    const peak = splitLoad[pk]!;
    const strategy = determine_sharding_strategy(peak, t.partitionMaxLoad, t.partitionMinLoad);
    const tooBig = w.bytes > t.partitionMaxBytes;
    const tp = forecastById.get(w.id)?.throughputP90;
    const tooBusy = t.partitionMaxThroughput !== undefined && tp !== undefined && tp > t.partitionMaxThroughput;
    if (strategy !== 'split' && !tooBig && !tooBusy) {
      if (peak > t.partitionMaxLoad * (1 - knobs.hysteresis)) {
        reasons.push({ code: 'hysteresis', partitionId: w.id, message: `partition ${w.id} peaks at ${fmtLoad(peak)} (p90 ${fmtLoad(maxOf(w.upper))}), within ${fmtPct(knobs.hysteresis)} of its split limit ${fmtLoad(t.partitionMaxLoad)}: watching, not splitting` });
      }
      afterSplit.push(w);
      continue;
    }
    let k = 2;
    let result: SplitResult | null;
    let trigger: PlanStep['trigger'] = 'forecast';
    let cause: string;
    let evenForSurge = false;
    const crossing = strategy === 'split' ? firstAbove(splitLoad, t.partitionMaxLoad) : -1;
    if (strategy === 'split') {
      k = splitCount(peak, t.partitionMaxLoad, knobs.splitFill);
      result = findSplitPoints(w.lo, w.hi, w.samples, k);
      // A surge is cut into pieces small enough to copy quickly off its (hot, throttled) shard. The
      // key samples cover the last hour, not where the surge is, so the pieces are even in bytes.
      const pieceBytes = input.mover.throughputBytesPerSec * knobs.surgePieceSeconds;
      if (w.surge && knobs.surgePieceSeconds > 0 && w.bytes > k * pieceBytes) {
        const even = Math.min(MAX_SURGE_PIECES, Math.ceil(w.bytes / pieceBytes));
        const mid = midpointSplit(w.lo, w.hi, even);
        result = { ...mid, shares: w.samples.length ? sharesFromSamples(w.lo, w.hi, w.samples, mid.points) : mid.shares };
        evenForSurge = true;
      }
      const reactive = w.missUntil > 0 && crossing >= 0 && crossing < w.missUntil && w.upper[crossing]! > (forecastById.get(w.id) ? forecastAtNow(forecastById.get(w.id)!) : 0);
      trigger = crossing === 0 && reactive ? 'reactive' : 'forecast';
      const pred = predictedAt(w, pk, t.partitionMaxLoad);
      cause =
        trigger === 'reactive'
          ? w.surge
            ? `partition ${w.id} ${describeRange(w.lo, w.hi)} measured ${fmtLoad(w.surge.actual)} now, up from ${fmtLoad(w.surge.previous)} the interval before, and is taken to reach ${fmtLoad(w.surge.standIn)} before the next measurement, above its limit of ${fmtLoad(t.partitionMaxLoad)}, which the forecast did not predict`
            : `partition ${w.id} ${describeRange(w.lo, w.hi)} measured ${fmtLoad(w.upper[0]!)} now, above its limit of ${fmtLoad(t.partitionMaxLoad)}, which the forecast did not predict`
          : `partition ${w.id} ${describeRange(w.lo, w.hi)} is forecast to reach ${loadText(pred)}, above its limit of ${fmtLoad(t.partitionMaxLoad)}` +
            (crossing > 0 ? `; it crosses the limit at ${fmtTime(now + crossing * stepMs)}` : '');
    } else if (tooBig) {
      k = Math.max(2, Math.ceil(w.bytes / (t.partitionMaxBytes * knobs.splitFill)));
      result = midpointSplit(w.lo, w.hi, k);
      trigger = 'size';
      cause = `partition ${w.id} holds ${fmtBytes(w.bytes)}, above the size limit of ${fmtBytes(t.partitionMaxBytes)}`;
      if (w.samples.length) {
        // Even rows, but report the load each piece will carry.
        result = { ...result, shares: sharesFromSamples(w.lo, w.hi, w.samples, result.points) };
      }
    } else {
      k = Math.max(2, Math.ceil(tp! / (t.partitionMaxThroughput! * knobs.splitFill)));
      result = findSplitPoints(w.lo, w.hi, w.samples, k);
      cause = `partition ${w.id} is forecast to serve ${fmtLoad(tp!)} queries/s (p90), above its limit of ${fmtLoad(t.partitionMaxThroughput!)}`;
    }
    if (!result || result.points.length === 0) {
      reasons.push({ code: 'no-split-point', partitionId: w.id, message: `${cause}, but its load sits on one key: no split point can divide it` });
      afterSplit.push(w);
      continue;
    }
    // Pieces: the left keeps the id, the others get provisional ids.
    const bounds = [w.lo, ...result.points, w.hi];
    const pieces: Work[] = [];
    let prev: Draft | undefined;
    let prevId = w.id;
    for (let j = 0; j < bounds.length - 1; j++) {
      const share = result.shares[j]!;
      const width = result.widths[j]!;
      const piece: Work = {
        ...w,
        id: j === 0 ? w.id : provisionalId--,
        lo: bounds[j]!,
        hi: bounds[j + 1]!,
        bytes: w.bytes * width,
        rows: w.rows * width,
        upper: scaled(w.upper, share),
        mean: scaled(w.mean, share),
        p10: scaled(w.p10, share),
        p50: scaled(w.p50, share),
        center: scaled(w.center, share),
        samples: w.samples.filter((s) => s.hash >= bounds[j]! && s.hash < bounds[j + 1]!),
        provisional: j > 0,
        origin: `piece ${j + 1} of ${bounds.length - 1} of partition ${w.id}`,
      };
      pieces.push(piece);
      if (j > 0) {
        const parent = pieces[j - 1]!;
        const shareText = result.shares.map((s) => fmtLoad(peak * s)).join(' / ');
        const d: Draft = newDraft({
          action: { kind: 'split', partitionId: prevId, at: bounds[j]!, newPartitionId: piece.id },
          range: { lo: bounds[j - 1]!, hi: w.hi },
          bytes: 0,
          seconds: cutover,
          deps: prev ? [prev] : [],
          trigger,
          urgent: crossing === 0,
          crossing: crossing >= 0 ? crossing : undefined,
          why:
            j === 1
              ? `${cause}. Split into ${bounds.length - 1} pieces at ${result.fromSamples ? 'load-weighted key samples' : evenForSurge ? `hash midpoints (a surge: pieces of ${fmtBytes(w.bytes / (bounds.length - 1))} copy quickly off a hot shard)` : 'hash midpoints (no key samples)'} so each carries ~${shareText} at the peak; metadata only, the pieces stay on shard ${w.shard}.`
              : `Continues the split of partition ${w.id} (${parent.origin}).`,
          predicted: strategy === 'split' ? predictedAt(w, pk, t.partitionMaxLoad) : undefined,
          group: 'split',
        });
        prev = d;
      }
      prevId = piece.id;
    }
    for (const p of pieces) splitDraftOf.set(p, prev!);
    for (const p of pieces) {
      if (maxOf(aloneLoad(p, upperScaleFor(uCap))) > t.partitionMaxLoad && p.samples.length <= 1 && result.fromSamples) {
        reasons.push({ code: 'no-split-point', partitionId: w.id, message: `one key of partition ${w.id} alone is forecast at ${fmtLoad(maxOf(p.upper))} (p90), above the limit of ${fmtLoad(t.partitionMaxLoad)}: a split cannot divide one key` });
      }
      afterSplit.push(p);
    }
  }

  // ---- 3. merges -------------------------------------------------------------------------------
  const shardSeries = () => {
    for (const s of shards.values()) s.load.clear();
    for (const w of current) shards.get(w.shard)!.load.add(w);
  };
  let current: Work[] = afterSplit;
  shardSeries();
  {
    const sorted = current.slice().sort((a, b) => a.keyspaceId - b.keyspaceId || (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
    const merged = new Set<Work>();
    const replacement = new Map<Work, Work>();
    for (let i = 0; i + 1 < sorted.length; i++) {
      const a = sorted[i]!;
      const b = sorted[i + 1]!;
      if (a.keyspaceId !== b.keyspaceId || a.hi !== b.lo || merged.has(a) || merged.has(b)) continue;
      if (splitDraftOf.has(a) || splitDraftOf.has(b)) continue;
      // Cold by the expected peak: a p90 inflated by an uncertain forecast would keep two cold
      // partitions apart forever (the merged partition's p90 is still held below the split limit).
      const pa = maxOf(a.center);
      const pb = maxOf(b.center);
      if (determine_sharding_strategy(pa, t.partitionMaxLoad, t.partitionMinLoad) !== 'merge' || determine_sharding_strategy(pb, t.partitionMaxLoad, t.partitionMinLoad) !== 'merge') continue;
      if (a.frozen || b.frozen || a.locked || b.locked) continue; // reasons already recorded
      const combined = new Float64Array(steps);
      addInto(combined, a.upper);
      addInto(combined, b.upper);
      const cpk = peakIndex(combined);
      if (combined[cpk]! >= t.partitionMaxLoad * (1 - knobs.hysteresis)) {
        reasons.push({ code: 'hysteresis', partitionId: a.id, message: `partitions ${a.id} and ${b.id} are each below the merge limit ${fmtLoad(t.partitionMinLoad)}, but together would peak at ${fmtLoad(combined[cpk]!)}, within ${fmtPct(knobs.hysteresis)} of the split limit: not merging` });
        continue;
      }
      // The size limit splits too: a merge past it would be cut again by the next plan (thrash).
      if (a.bytes + b.bytes > t.partitionMaxBytes * (1 - knobs.hysteresis)) {
        reasons.push({ code: 'hysteresis', partitionId: a.id, message: `partitions ${a.id} and ${b.id} are cold, but together would hold ${fmtBytes(a.bytes + b.bytes)}, within ${fmtPct(knobs.hysteresis)} of the size limit ${fmtBytes(t.partitionMaxBytes)}: not merging` });
        continue;
      }
      const undo = mergeWouldUndoSplit(history, a.hi, now, knobs.cooldownSeconds);
      if (undo) {
        reasons.push({ code: 'cooldown', partitionId: a.id, message: `partitions ${a.id} and ${b.id} are cold, but their boundary was split at ${fmtTime(undo.atMs)}; merging within the ${fmtDuration(knobs.cooldownSeconds)} cooldown would be thrash` });
        continue;
      }
      let moveDraft: Draft | undefined;
      if (a.shard !== b.shard) {
        const [small, big] = a.bytes <= b.bytes ? [a, b] : [b, a];
        const target = shards.get(big.shard)!;
        const moved = recentAction(history, 'move', small.lo, small.hi, now, knobs.cooldownSeconds);
        if (moved) {
          reasons.push({ code: 'cooldown', partitionId: small.id, message: `partitions ${a.id} and ${b.id} could merge, but partition ${small.id} was moved at ${fmtTime(moved.atMs)}; not moving it again within the cooldown` });
          continue;
        }
        if (target.draining || target.uncertain || !target.load.fits(small, target.cap * (1 - knobs.hysteresis))) {
          reasons.push({ code: 'no-target', partitionId: small.id, message: `partitions ${a.id} and ${b.id} could merge, but shard ${big.shard} has no room for partition ${small.id}` });
          continue;
        }
        moveDraft = newDraft({
          action: { kind: 'move', partitionId: small.id, fromShard: small.shard, toShard: big.shard },
          range: { lo: small.lo, hi: small.hi },
          bytes: small.bytes,
          seconds: moveSeconds(small.bytes),
          deps: [],
          trigger: 'scale-down',
          urgent: false,
          why: `Brings partition ${small.id} (${fmtBytes(small.bytes)}, the smaller of the two) to shard ${big.shard} so it can merge with partition ${big.id}.`,
          group: 'merge',
        });
        shards.get(small.shard)!.load.add(small, -1);
        target.load.add(small);
        small.shard = big.shard;
      }
      newDraft({
        action: { kind: 'merge', a: a.id, b: b.id },
        range: { lo: a.lo, hi: b.hi },
        bytes: 0,
        seconds: cutover,
        deps: moveDraft ? [moveDraft] : [],
        trigger: 'scale-down',
        urgent: false,
        // Metadata only: nothing is copied, so there is no quieter time to wait for (waiting only
        // gave the next forecast's noise a chance to drop the merge before it came due).
        startNow: !moveDraft,
        why: `Partitions ${a.id} and ${b.id} stay below the merge limit of ${fmtLoad(t.partitionMinLoad)} for the whole forecast (expected peaks ${fmtLoad(pa)} and ${fmtLoad(pb)}); merged they peak at ${fmtLoad(combined[cpk]!)} (p90) at ${fmtTime(now + cpk * stepMs)}, well below the split limit of ${fmtLoad(t.partitionMaxLoad)}. Metadata only.`,
        predicted: { atMs: now + cpk * stepMs, mean: sumAt(a.mean, b.mean, cpk), p10: sumAt(a.p10, b.p10, cpk), p90: combined[cpk]!, limit: t.partitionMaxLoad },
        group: 'merge',
      });
      merged.add(a);
      merged.add(b);
      const m: Work = {
        ...a,
        hi: b.hi,
        bytes: a.bytes + b.bytes,
        rows: a.rows + b.rows,
        upper: combined,
        mean: new Float64Array(steps),
        p10: new Float64Array(steps),
        p50: new Float64Array(steps),
        center: new Float64Array(steps),
        samples: [...a.samples, ...b.samples],
      };
      for (const k of ['mean', 'p10', 'p50', 'center'] as const) {
        addInto(m[k], a[k]);
        addInto(m[k], b[k]);
      }
      replacement.set(a, m);
      replacement.set(b, m);
    }
    if (merged.size) {
      const next: Work[] = [];
      const seen = new Set<Work>();
      for (const w of current) {
        const r = replacement.get(w) ?? w;
        if (!seen.has(r)) {
          seen.add(r);
          next.push(r);
        }
      }
      current = next;
    }
  }

  // ---- 4. placement ---------------------------------------------------------------------------
  shardSeries();
  /** Placement looks this many steps ahead; later crossings are fixed by later plans. */
  const look = Math.max(1, Math.min(steps, Math.ceil((knobs.placementLookaheadSeconds * 1000) / stepMs)));
  const overAt = (s: ShardState) => firstAbove(s.series.subarray(0, look), s.cap);
  const placeDrafts: Draft[] = [];
  let shortage = 0;
  let shortageText = '';
  const addDraftFor = new Map<number, Draft>();
  const movedThisPlan = new Set<Work>();
  /** Shards a copy runs off now (their partitions' move jobs), and those this placement pass evacuates. */
  const copyingFrom = new Set<number>();
  for (const j of input.runningJobs ?? []) {
    if (j.kind !== 'move') continue;
    const p = input.routing.partitions.find((x) => x.id === j.partitionId);
    if (p && p.shardId !== j.toShard) copyingFrom.add(p.shardId);
  }
  const evacuated = new Set<number>();
  // A drain in progress is finished before anything else: its partitions go where they fit.
  for (const s of shards.values()) {
    if (!s.draining) continue;
    for (const w of current.filter((x) => x.shard === s.id)) {
      if (w.frozen || w.locked) continue;
      let best: ShardState | undefined;
      let bestPeak = Infinity;
      for (const o of shards.values()) {
        if (o.id === s.id || o.draining || o.uncertain || movedAwayFrom(w).has(o.id)) continue;
        if (!o.load.fits(w, o.cap, look)) continue;
        const pk = o.load.peakWith(w) / o.capacity;
        if (pk < bestPeak) {
          bestPeak = pk;
          best = o;
        }
      }
      if (!best) {
        reasons.push({ code: 'no-target', partitionId: w.id, shardId: s.id, message: `shard ${s.id} is draining, but no other shard has room for partition ${w.id} (peak ${fmtLoad(maxOf(w.upper))}, p90) yet` });
        continue;
      }
      newDraft({
        action: { kind: 'move', partitionId: w.id, fromShard: s.id, toShard: best.id },
        range: { lo: w.lo, hi: w.hi },
        bytes: w.bytes,
        seconds: moveSeconds(w.bytes),
        deps: [],
        trigger: 'scale-down',
        urgent: false,
        startNow: true,
        why: `Continues draining shard ${s.id}: partition ${w.id} (${fmtBytes(w.bytes)}, peak ${fmtLoad(maxOf(w.upper))}, p90) goes to shard ${best.id}, which then peaks at ${fmtPct(bestPeak)} of capacity.`,
        group: 'drain',
      });
      s.load.add(w, -1);
      best.load.add(w);
      w.shard = best.id;
      movedThisPlan.add(w);
    }
  }
  // Within the cooldown after a drain, adding a server back would undo it (thrash): the headroom
  // takes the overload first (up to the stretched cap, as when short of servers), and a server is
  // added only if even that does not hold it.
  const lastDrainAt = history.filter((h) => h.kind === 'drain-shard' && h.atMs <= now).reduce((a, h) => Math.max(a, h.atMs), -Infinity);
  let blockSpares = now - lastDrainAt < knobs.cooldownSeconds * 1000 && knobs.shortageFill > 0 && spares.length > 0;
  let stretched = false;
  /** True while placement runs with stretched caps (short of servers, or holding spares back after a drain). */
  let stretching = false;
  const uStretch = utilizationForLatency(t.baseP99Ms, t.targetP99Ms) * knobs.shortageFill;
  const snap = blockSpares ? snapshotPlacement() : undefined;
  placeWithStretch();
  if (snap && shortage > 0) {
    restorePlacement(snap);
    blockSpares = false;
    placeWithStretch();
  } else if (snap && stretched) {
    reasons.push({ code: 'cooldown', message: `a server was drained at ${fmtTime(lastDrainAt)}; within the ${fmtDuration(knobs.cooldownSeconds)} cooldown the forecast overload is placed up to ${fmtPct(uStretch)} of capacity instead of adding a server back` });
  }

  function snapshotPlacement() {
    return {
      shardIds: new Set(shards.keys()),
      series: new Map([...shards.values()].map((x) => [x.id, { load: x.load.clone(), cap: x.cap }])),
      owner: new Map(current.map((w) => [w, w.shard])),
      moved: new Set(movedThisPlan),
      placeLen: placeDrafts.length,
      draftsLen: drafts.length,
      key: draftKey,
      adds: new Map(addDraftFor),
      spares: spares.slice(),
      reasonsLen: reasons.length,
    };
  }

  function restorePlacement(x: ReturnType<typeof snapshotPlacement>): void {
    for (const id of [...shards.keys()]) if (!x.shardIds.has(id)) shards.delete(id);
    for (const [id, v] of x.series) {
      const st = shards.get(id)!;
      st.load.copyFrom(v.load);
      st.cap = v.cap;
    }
    for (const [w, sh] of x.owner) w.shard = sh;
    movedThisPlan.clear();
    for (const w of x.moved) movedThisPlan.add(w);
    placeDrafts.length = x.placeLen;
    drafts.length = x.draftsLen;
    draftKey = x.key;
    addDraftFor.clear();
    for (const [k, v] of x.adds) addDraftFor.set(k, v);
    spares.splice(0, spares.length, ...x.spares);
    reasons.length = x.reasonsLen;
    shortage = 0;
    shortageText = '';
    stretched = false;
  }

  function placeWithStretch(): void {
  placeOverloaded();
  // Short of servers: give up headroom before giving up the plan. Every shard may be filled up to
  // shortageFill of the utilization that still meets the target p99; the operator is still asked.
  if (shortage > 0 && uStretch > uCap) {
    const asked = shortageText;
    for (const s of shards.values()) {
      s.cap = s.capacity * uStretch;
      s.load.setUpperScale(upperScaleFor(uStretch));
    }
    shortage = 0;
    shortageText = '';
    stretching = true;
    placeOverloaded();
    stretching = false;
    if (shortage === 0) {
      stretched = true;
      if (!blockSpares) newDraft({
        action: { kind: 'needs-capacity', shards: 1, capacity: [...shards.values()].reduce((a, s) => Math.max(a, s.capacity), 0) },
        range: { lo: HASH_MIN, hi: HASH_END },
        bytes: 0,
        seconds: 0,
        deps: [],
        trigger: 'forecast',
        urgent: true,
        why: `The spare pool is too small to keep every shard under ${fmtPct(uCap)} of capacity (${asked}). The plan fills shards up to ${fmtPct(uStretch)} instead (p99 stays within the ${t.targetP99Ms} ms target, with less headroom): add at least 1 more server to the spare pool (ADD SHARD) to get the headroom back.`,
        group: 'place',
      });
      if (!blockSpares) reasons.push({ code: 'spare-pool-empty', message: `the spare pool is too small for a ${fmtPct(uCap)} utilization cap (${asked}); placed up to ${fmtPct(uStretch)} and asked for more servers` });
    } else {
      for (const s of shards.values()) {
        s.cap = s.capacity * uCap;
        s.load.setUpperScale(upperScaleFor(uCap));
      }
      shortageText = asked + (shortageText ? `; even at ${fmtPct(uStretch)}: ${shortageText}` : '');
    }
  }

  }

  function placeOverloaded(): void {
  evacuated.clear();
  const overloaded = [...shards.values()].filter((s) => overAt(s) >= 0).sort((a, b) => maxOf(b.series, look) / b.cap - maxOf(a.series, look) / a.cap);
  for (const s of overloaded) {
    const pk = peakIndex(s.series.subarray(0, look));
    const reactive = misses.some((m) => m.shardId === s.id) || (overAt(s) === 0 && current.some((w) => w.shard === s.id && w.missUntil > 0));
    const before = s.series.slice();
    // A shard surging over its cap now gets one copy off it at a time: each concurrent copy adds
    // its own load to a shard that has none to spare, and all of them run throttled. The rest
    // (also what is due later) waits for a later plan, which sees the copy running and what remains.
    const surgingNow = overAt(s) === 0 && current.some((w) => w.shard === s.id && w.surge !== undefined);
    let guard = 0;
    while (overAt(s) >= 0 && guard++ < 256) {
      // Each move is due by the crossing that remains once the moves before it are done.
      const crossing = overAt(s);
      if (surgingNow && (copyingFrom.has(s.id) || evacuated.has(s.id))) {
        reasons.push({ code: 'job-running', shardId: s.id, message: `shard ${s.id} is over its cap now with a surge, and a copy off it is ${copyingFrom.has(s.id) ? 'running' : 'planned'}: one copy at a time off a hot shard; the rest waits for the next plan` });
        break;
      }
      const pick = chooseMove(s);
      if (pick) {
        applyMove(pick.w, s, pick.target, crossing, pk, before, reactive);
        if (surgingNow) evacuated.add(s.id);
        continue;
      }
      // A spare only helps if something on this shard would fit on an empty one.
      const spareRoom = spares.reduce((a, x) => Math.max(a, x.capacity * uCap * (1 - knobs.hysteresis)), 0);
      const largestRoom = Math.max(spareRoom, ...[...shards.values()].map(targetRoom));
      const movable = movableFrom(s);
      if (!movable.some((w) => maxOf(aloneLoad(w, upperScaleFor(uCap)), targetSteps()) <= largestRoom)) {
        reasons.push({ code: 'no-target', shardId: s.id, message: `shard ${s.id} is forecast at ${fmtLoad(maxOf(s.series, look))} (p90) against a cap of ${fmtLoad(s.cap)}, but what remains on it cannot be moved or split further (one range carries more than a whole server)` });
        break;
      }
      const spare = blockSpares ? undefined : spares.shift();
      if (spare) {
        const load = newShardLoad(uCap);
        const ns: ShardState = { id: spare.shardId, capacity: spare.capacity, cap: spare.capacity * uCap, draining: false, added: true, uncertain: false, series: load.series, load };
        shards.set(ns.id, ns);
        const d = newDraft({
          action: { kind: 'add-shard', spare: ns.id },
          range: { lo: HASH_MIN, hi: HASH_END },
          bytes: 0,
          seconds: 0,
          deps: [],
          trigger: reactive ? 'reactive' : 'forecast',
          urgent: crossing === 0,
          crossing,
          why: `Shard ${s.id} is forecast to reach ${fmtLoad(before[pk]!)} (p90) at ${fmtTime(now + pk * stepMs)}, above its cap of ${fmtLoad(s.cap)} (${fmtPct(uCap)} of capacity ${fmtLoad(s.capacity)}), and no existing shard has room: add spare server ${ns.id} (capacity ${fmtLoad(ns.capacity)}).`,
          predicted: { atMs: now + pk * stepMs, mean: 0, p10: 0, p90: before[pk]!, limit: s.cap },
          group: 'place',
        });
        placeDrafts.push(d);
        addDraftFor.set(ns.id, d);
        continue;
      }
      // Spare pool empty: measure what is missing and stop placing.
      const excess = maxOf(s.series, look) - s.cap;
      shortage += excess;
      shortageText += `${shortageText ? '; ' : ''}shard ${s.id} is forecast at ${fmtLoad(maxOf(s.series, look))} (p90) against a cap of ${fmtLoad(s.cap)}`;
      break;
    }
  }
  }

  /** Partitions on s that placement may move: not frozen, not locked, not moved within the cooldown (unless s is over its cap now). */
  function movableFrom(s: ShardState): Work[] {
    const crossingNow = overAt(s) === 0;
    return current.filter((w) => {
      if (w.shard !== s.id || w.frozen || w.locked || movedThisPlan.has(w)) return false;
      const recent = recentAction(history, 'move', w.lo, w.hi, now, knobs.cooldownSeconds);
      if (recent && !crossingNow) {
        noteOnce(`cooldown-move-${w.id}`, { code: 'cooldown', partitionId: w.id, message: `partition ${w.id} was moved at ${fmtTime(recent.atMs)}; not moving it again within the ${fmtDuration(knobs.cooldownSeconds)} cooldown unless its shard is over the limit now` });
        return false;
      }
      return true;
    });
  }

  /**
   * How far placement fills a target, at every step of the horizon (not only the lookahead): a
   * target with room for the next hours only sheds the partition, or another, when its own peak
   * comes into the lookahead (two moves for one), and one filled to its cap sheds at the first
   * revision of the forecast that lifts it. So targets are filled to (1 − hysteresis) × cap; the
   * shards they relieve shed only above the cap itself.
   */
  function targetRoom(target: ShardState): number {
    // Stretched placement has given up headroom already: targets fill to the stretched cap.
    return stretching ? target.cap : target.cap * (1 - knobs.hysteresis);
  }

  /**
   * Steps a target must have room for. Stretched placement (short of servers) only asks for the
   * lookahead, as before: a later peak that does not fit either would otherwise leave nothing
   * placeable at all, and then nothing is moved (seed 2024's tv-spot: 2,269 s over the SLO).
   */
  function targetSteps(): number {
    return stretching ? look : steps;
  }

  /**
   * The move placement makes next off s, if any. A shard over its cap now because of a surge sheds
   * the surging ranges first (most load per byte: the copy off a hot shard is throttled, and every
   * concurrent copy adds its own overhead); when they fit on no shard, undefined asks the caller for
   * a spare for them, rather than moving many cold partitions off the hot shard one at a time.
   */
  function chooseMove(s: ShardState): { w: Work; target: ShardState } | undefined {
    const movable = movableFrom(s);
    const hot = overAt(s) === 0 ? movable.filter((w) => w.surge !== undefined) : [];
    if (hot.length) {
      const pick = bestMove(s, hot);
      if (pick) return pick;
      const spareRoom = spares.reduce((a, x) => Math.max(a, x.capacity * uCap * (1 - knobs.hysteresis)), 0);
      if (!blockSpares && hot.some((w) => maxOf(aloneLoad(w, upperScaleFor(uCap)), targetSteps()) <= spareRoom)) return undefined;
    }
    return bestMove(s, movable);
  }

  function bestMove(s: ShardState, candidates: Work[]): { w: Work; target: ShardState } | undefined {
    let best: { w: Work; target: ShardState; fixes: boolean; score: number; peakAfter: number } | undefined;
    const worst = peakIndex(s.series.subarray(0, look));
    for (const w of candidates) {
      const after = s.load.seriesWith(w, -1);
      const fixes = firstAbove(after.subarray(0, look), s.cap) < 0;
      for (const target of shards.values()) {
        if (target.id === s.id || target.draining || target.uncertain) continue;
        if (movedAwayFrom(w).has(target.id)) continue; // moving back within the cooldown is thrash
        // The target must keep the partition for the whole horizon, with room to spare (see targetRoom).
        if (!target.load.fits(w, targetRoom(target), targetSteps())) continue;
        const peakAfter = target.load.peakWith(w, look) / target.cap;
        // Fixing moves: fewest bytes, then the emptiest target. Partial moves: most relief per byte.
        const score = fixes ? w.bytes + peakAfter * 1e-6 : -((s.series[worst]! - after[worst]!) / (w.bytes + 1));
        if (!best || (fixes && !best.fixes) || (fixes === best.fixes && (score < best.score || (score === best.score && peakAfter < best.peakAfter)))) {
          best = { w, target, fixes, score, peakAfter };
        }
      }
    }
    return best;
  }

  function applyMove(w: Work, from: ShardState, to: ShardState, crossing: number, pk: number, before: Float64Array, reactive: boolean): void {
    const deps: Draft[] = [];
    const split = splitDraftOf.get(w);
    if (split) deps.push(split);
    const add = addDraftFor.get(to.id);
    if (add) deps.push(add);
    const secs = moveSeconds(w.bytes);
    const d = newDraft({
      action: { kind: 'move', partitionId: w.id, fromShard: from.id, toShard: to.id },
      range: { lo: w.lo, hi: w.hi },
      bytes: w.bytes,
      seconds: secs,
      deps,
      trigger: reactive ? 'reactive' : 'forecast',
      urgent: crossing === 0,
      crossing,
      why:
        `Shard ${from.id} is forecast to reach ${fmtLoad(before[pk]!)} (p90) at ${fmtTime(now + pk * stepMs)}, above its cap of ${fmtLoad(from.cap)} (${fmtPct(uCap)} of capacity ${fmtLoad(from.capacity)})` +
        (crossing > 0 ? `, crossing it at ${fmtTime(now + crossing * stepMs)}` : ', and is over it now') +
        `. Move ${w.origin ?? `partition ${w.id}`} (${fmtBytes(w.bytes)}, peak ${fmtLoad(maxOf(w.upper))}) to shard ${to.id}, the cheapest move that relieves it; shard ${to.id} then peaks at ${fmtPct(to.load.peakWith(w) / to.capacity)} of capacity.`,
      predicted: { atMs: now + pk * stepMs, mean: 0, p10: 0, p90: before[pk]!, limit: from.cap },
      group: 'place',
    });
    placeDrafts.push(d);
    from.load.add(w, -1);
    to.load.add(w);
    w.shard = to.id;
    movedThisPlan.add(w);
  }

  if (shortage > 0) {
    // Nothing half-done: drop every move and shard addition; keep metadata-only splits and merges.
    const dropped = new Set(placeDrafts);
    for (const d of drafts) if (d.group === 'merge' && d.deps.some((x) => dropped.has(x))) dropped.add(d);
    for (let i = drafts.length - 1; i >= 0; i--) if (dropped.has(drafts[i]!)) drafts.splice(i, 1);
    const typical = [...shards.values()].reduce((a, s) => Math.max(a, s.cap), 0) || 1;
    const need = Math.max(1, Math.ceil(shortage / typical));
    const largest = [...shards.values()].reduce((a, s) => Math.max(a, s.capacity), 0);
    newDraft({
      action: { kind: 'needs-capacity', shards: need, capacity: largest },
      range: { lo: HASH_MIN, hi: HASH_END },
      bytes: 0,
      seconds: 0,
      deps: [],
      trigger: 'forecast',
      urgent: true,
      why: `The forecast needs more servers than the cluster and its spare pool have: ${shortageText}. Add ${need} more server${need > 1 ? 's' : ''} of capacity ${fmtLoad(largest)} to the spare pool (ADD SHARD), then re-plan; no move was planned so nothing is left half-done.`,
      group: 'place',
    });
    reasons.push({ code: 'spare-pool-empty', message: `the spare pool is empty and ${need} more server${need > 1 ? 's are' : ' is'} needed; moves and shard additions were left out of the plan` });
  }

  // ---- 5. scale-down ---------------------------------------------------------------------------
  const drainSteps = Math.max(1, Math.min(steps, Math.ceil((knobs.drainLowSeconds * 1000) / stepMs)));
  const anyDraining = [...shards.values()].some((s) => s.draining);
  const busyShards = new Set<number>();
  for (const j of input.runningJobs ?? []) {
    if (j.toShard !== undefined) busyShards.add(j.toShard);
    const p = input.routing.partitions.find((x) => x.id === j.partitionId);
    if (p) busyShards.add(p.shardId);
  }
  const lastAdd = history.filter((h) => h.kind === 'add-shard' && h.atMs <= now).reduce((a, h) => Math.max(a, h.atMs), -Infinity);
  const lastDrain = history.filter((h) => h.kind === 'drain-shard' && h.atMs <= now).reduce((a, h) => Math.max(a, h.atMs), -Infinity);
  const addCooling = now - lastAdd < knobs.cooldownSeconds * 1000;
  const placing = new Set<number>();
  for (const d of drafts) if (d.action.kind === 'move') placing.add(d.action.fromShard).add(d.action.toShard);
  for (const id of addDraftFor.keys()) placing.add(id);
  if (shortage === 0 && !stretched && !anyDraining && addCooling) {
    const low = [...shards.values()].filter((s) => !s.draining && maxOf(s.load.upperSum, drainSteps) < s.capacity * t.shardMinUtilization);
    if (low.length) reasons.push({ code: 'cooldown', shardId: low[0]!.id, message: `shard ${low[0]!.id} is below ${fmtPct(t.shardMinUtilization)} of capacity, but a server was added at ${fmtTime(lastAdd)}; no drain within the ${fmtDuration(knobs.cooldownSeconds)} cooldown` });
  }
  if (shortage === 0 && !stretched && !anyDraining && !addCooling && addDraftFor.size === 0) {
    const active = [...shards.values()].filter((s) => !s.draining);
    // Low by the p90, not by the planning load: a drain the forecast's upside undoes is an add-back (thrash).
    const lowShards = active.filter((s) => maxOf(s.load.upperSum, drainSteps) < s.capacity * t.shardMinUtilization);
    if (lowShards.length && active.length <= knobs.minShards) {
      reasons.push({ code: 'min-shards', message: `shard load is low, but the cluster is at its minimum of ${knobs.minShards} shard${knobs.minShards > 1 ? 's' : ''}` });
    } else if (lowShards.length) {
      const bytesOn = (s: ShardState) => current.filter((w) => w.shard === s.id).reduce((a, w) => a + w.bytes, 0);
      const candidates = lowShards.filter((s) => {
        if (s.uncertain || busyShards.has(s.id) || placing.has(s.id) || current.some((w) => w.shard === s.id && (w.locked || w.frozen))) return false;
        const added = recentShardAction(history, 'add-shard', s.id, now, knobs.cooldownSeconds);
        if (added) {
          reasons.push({ code: 'cooldown', shardId: s.id, message: `shard ${s.id} is below ${fmtPct(t.shardMinUtilization)} of capacity, but it was added at ${fmtTime(added.atMs)}; not draining it within the ${fmtDuration(knobs.cooldownSeconds)} cooldown` });
          return false;
        }
        return true;
      });
      candidates.sort((a, b) => bytesOn(a) - bytesOn(b) || a.id - b.id);
      for (const s of candidates) {
        const plan = planDrain(s);
        if (plan) break;
      }
    }
  }

  function planDrain(s: ShardState): boolean {
    const parts = current.filter((w) => w.shard === s.id).sort((a, b) => maxOf(b.upper, drainSteps) - maxOf(a.upper, drainSteps));
    const others = [...shards.values()].filter((x) => x.id !== s.id && !x.draining && !x.uncertain && !placing.has(x.id));
    const trial = new Map(others.map((x) => [x.id, x.load.clone()]));
    const assignment: { w: Work; to: ShardState }[] = [];
    for (const w of parts) {
      let best: ShardState | undefined;
      let bestPeak = Infinity;
      for (const o of others) {
        if (movedAwayFrom(w).has(o.id)) continue;
        const load = trial.get(o.id)!;
        if (!load.fits(w, o.cap * (1 - knobs.hysteresis), drainSteps)) continue;
        const pk = load.peakWith(w, drainSteps) / o.capacity;
        if (pk < bestPeak) {
          bestPeak = pk;
          best = o;
        }
      }
      if (!best) return false;
      trial.get(best.id)!.add(w);
      assignment.push({ w, to: best });
    }
    const totalBytes = parts.reduce((a, w) => a + w.bytes, 0);
    const drain = newDraft({
      action: { kind: 'drain-shard', shard: s.id },
      range: { lo: HASH_MIN, hi: HASH_END },
      bytes: totalBytes,
      seconds: parts.reduce((a, w) => a + moveSeconds(w.bytes), 0) / knobs.maxConcurrentMoves,
      deps: [],
      trigger: 'scale-down',
      urgent: false,
      why: `Shard ${s.id} is forecast to stay below ${fmtPct(t.shardMinUtilization)} of its capacity for the next ${fmtDuration(knobs.drainLowSeconds)} (peak ${fmtLoad(maxOf(s.load.upperSum, drainSteps))} of ${fmtLoad(s.capacity)}, p90), and the other shards can hold its ${parts.length} partition${parts.length === 1 ? '' : 's'} below ${fmtPct(uCap * (1 - knobs.hysteresis))} of capacity: drain it and release the server.`,
      predicted: { atMs: now + peakIndex(s.load.upperSum.subarray(0, drainSteps)) * stepMs, mean: 0, p10: 0, p90: maxOf(s.load.upperSum, drainSteps), limit: s.capacity * t.shardMinUtilization },
      group: 'drain',
    });
    for (const { w, to } of assignment) {
      newDraft({
        action: { kind: 'move', partitionId: w.id, fromShard: s.id, toShard: to.id },
        range: { lo: w.lo, hi: w.hi },
        bytes: w.bytes,
        seconds: moveSeconds(w.bytes),
        deps: [drain],
        trigger: 'scale-down',
        urgent: false,
        // A drained server stops costing at once, and the shards are below the drain limit already.
        startNow: true,
        why: `Empties shard ${s.id} (being drained): partition ${w.id} (${fmtBytes(w.bytes)}, peak ${fmtLoad(maxOf(w.upper, drainSteps))} over the next ${fmtDuration(knobs.drainLowSeconds)}) goes to shard ${to.id}.`,
        group: 'drain',
      });
      s.load.add(w, -1);
      to.load.add(w);
      w.shard = to.id;
    }
    return true;
  }

  // ---- 6. scheduling ------------------------------------------------------------------------
  const clusterMean = new Float64Array(steps);
  for (const w of current) addInto(clusterMean, w.mean);
  // Half the 80 % interval of the cluster load (partitions' errors taken as independent).
  const clusterNoise = new Float64Array(steps);
  for (const w of current) for (let i = 0; i < steps; i++) clusterNoise[i] = clusterNoise[i]! + ((w.upper[i]! - w.p10[i]!) / 2) ** 2;
  for (let i = 0; i < steps; i++) clusterNoise[i] = Math.sqrt(clusterNoise[i]!);
  const marginMs = knobs.safetyMarginSeconds * 1000;
  const moves = drafts.filter((d) => d.action.kind === 'move');
  // Σ duration / concurrency of every move due by the same or an earlier deadline.
  const deadlineOf = (d: Draft) => (d.crossing !== undefined && d.crossing >= 0 ? now + d.crossing * stepMs - marginMs : undefined);
  const timed = moves.filter((d) => !d.urgent && deadlineOf(d) !== undefined).sort((a, b) => deadlineOf(a)! - deadlineOf(b)!);
  let queued = 0;
  // After a drain, capacity comes back only once the cooldown is over, unless the deadline is sooner.
  const needsNewShard = (d: Draft) => d.action.kind === 'move' && addDraftFor.has(d.action.toShard);
  const notBefore = lastDrain + knobs.cooldownSeconds * 1000;
  for (const d of timed) {
    queued += d.seconds;
    const latest = deadlineOf(d)! - (queued / knobs.maxConcurrentMoves) * 1000;
    // A new server costs from the moment it is added: fill it late in the low window, not early.
    const r = pickStart(grid, clusterMean, d.seconds, latest, needsNewShard(d) ? Math.min(notBefore, latest) : undefined, needsNewShard(d) ? 'latest' : 'earliest', clusterNoise);
    d.startAtMs = r.startAtMs;
    d.startReason = r.reason;
    d.deadlineMs = deadlineOf(d);
    if (r.reason === 'now-no-window') {
      d.why += ` No low-traffic window fits: the crossing is at ${fmtTime(now + d.crossing! * stepMs)} and the moves due by then need ${fmtDuration(queued / knobs.maxConcurrentMoves)}; starting now.`;
    }
  }
  for (const d of drafts) {
    if (d.startAtMs !== undefined) continue;
    if (d.action.kind === 'needs-capacity') {
      d.startAtMs = now;
      d.startReason = 'asks-operator';
    } else if (d.startNow) {
      d.startAtMs = now;
      d.startReason = 'now-no-deadline';
    } else if (d.urgent) {
      d.startAtMs = now;
      d.startReason = 'now-urgent';
      d.deadlineMs = now;
    } else if (d.action.kind === 'move' || d.action.kind === 'merge' || (d.action.kind === 'split' && !hasDependents(d))) {
      const latest = deadlineOf(d);
      const r = pickStart(grid, clusterMean, d.seconds, latest === undefined ? undefined : latest - d.seconds * 1000, undefined, 'earliest', clusterNoise);
      d.startAtMs = r.startAtMs;
      d.startReason = r.reason;
      d.deadlineMs = latest;
      if (r.reason === 'now-no-window') d.why += ` No low-traffic window fits before the crossing at ${fmtTime(latest! + marginMs)}; starting now.`;
    }
  }
  // Steps that only enable others (splits, shard additions, drains) start with their first dependent.
  for (const d of drafts) {
    if (d.startAtMs !== undefined) continue;
    const dependents = drafts.filter((x) => x.deps.includes(d) && x.startAtMs !== undefined);
    const firstDep = dependents.reduce((a, x) => Math.min(a, x.startAtMs!), Infinity);
    d.startAtMs = Number.isFinite(firstDep) ? firstDep : now;
    d.startReason = 'with-next-step';
  }
  // A dependent never starts before what it depends on (chains of splits resolve in key order).
  for (let changed = true, n = 0; changed && n < 64; n++) {
    changed = false;
    for (const d of drafts) {
      for (const dep of d.deps) {
        if (dep.startAtMs! > d.startAtMs!) {
          dep.startAtMs = d.startAtMs;
          changed = true;
        }
      }
    }
  }

  function hasDependents(d: Draft): boolean {
    return drafts.some((x) => x.deps.includes(d));
  }

  // Among steps due at the same time, what answers a crossing now comes first (with the steps it
  // depends on): the executor starts moves in plan order with maxConcurrentMoves slots, and an
  // evacuation queued behind moves due in an hour leaves its shard over the limit meanwhile.
  const urgentChain = new Set<Draft>();
  const markUrgent = (d: Draft): void => {
    if (urgentChain.has(d)) return;
    urgentChain.add(d);
    for (const x of d.deps) markUrgent(x);
  };
  for (const d of drafts) if (d.urgent && d.crossing === 0 && d.startAtMs === now) markUrgent(d);
  const rank = (d: Draft) => (urgentChain.has(d) ? 0 : 1);
  const ordered = drafts.slice().sort((a, b) => a.startAtMs! - b.startAtMs! || rank(a) - rank(b) || a.key - b.key);
  const numberOf = new Map<Draft, number>();
  ordered.forEach((d, i) => numberOf.set(d, i + 1));
  const planSteps: PlanStep[] = ordered.map((d) => ({
    n: numberOf.get(d)!,
    action: d.action,
    range: d.range,
    startAtMs: d.startAtMs!,
    startReason: d.startReason!,
    ...(d.deadlineMs !== undefined ? { deadlineMs: d.deadlineMs } : {}),
    why: d.why,
    bytesToMove: d.bytes,
    estimatedSeconds: d.seconds,
    dependsOn: d.deps.map((x) => numberOf.get(x)!).filter((x) => x !== undefined),
    trigger: d.trigger,
    ...(d.predicted ? { predicted: d.predicted } : {}),
  }));
  shardSeries();
  const shardPeaks = [...shards.values()].map((s) => ({ shardId: s.id, peakLoad: maxOf(s.series), capacity: s.capacity })).sort((a, b) => a.shardId - b.shardId);
  return { planId: planHash(now, planSteps), createdAtMs: now, steps: planSteps, reasons, forecastMiss: misses, shardPeaks };

  /** Shards a range left within the cooldown: moving it back there would be thrash. */
  function movedAwayFrom(w: Work): Set<number> {
    const out = new Set<number>();
    for (const h of history) {
      if (h.kind !== 'move' || h.fromShard === undefined || h.lo === undefined || h.hi === undefined) continue;
      if (now - h.atMs >= knobs.cooldownSeconds * 1000 || h.atMs > now) continue;
      if (h.lo < w.hi && w.lo < h.hi) out.add(h.fromShard);
    }
    return out;
  }

  function noteOnce(key: string, r: PlanReason): void {
    if (noted.has(key)) return;
    noted.add(key);
    reasons.push(r);
  }
}

function sumAt(a: Float64Array, b: Float64Array, i: number): number {
  return a[i]! + b[i]!;
}

function sharesFromSamples(lo: bigint, hi: bigint, samples: WeightedHash[], points: bigint[]): number[] {
  const bounds = [lo, ...points, hi];
  const total = samples.reduce((a, s) => a + s.weight, 0);
  return bounds.slice(0, -1).map((b, j) => {
    const w = samples.filter((s) => s.hash >= b && s.hash < bounds[j + 1]!).reduce((a, s) => a + s.weight, 0);
    return total > 0 ? w / total : 1 / (bounds.length - 1);
  });
}

export type { ActionRecord, Thresholds, PlannerKnobs };
