// Planner input/output types: forecasts, thresholds, knobs, history and the Plan the planner returns.
import type { RoutingTable } from '../config/types.js';

/** One horizon step of a load-score forecast: mean and quantiles, in the shard-capacity unit. */
export interface QuantileStep {
  mean: number;
  p10: number;
  p50: number;
  p90: number;
  p99: number;
}

/** Forecast for one partition: steps[i] covers [startMs + i*stepSeconds, +stepSeconds). */
export interface PartitionForecast {
  partitionId: number;
  startMs: number;
  stepSeconds: number;
  steps: QuantileStep[];
  /** Predicted size at the horizon end. */
  sizeBytes: number;
  sizeRows: number;
  /** Optional upper-quantile peak throughput (queries/s) over the horizon. */
  throughputP90?: number;
}

/** A key seen by the access recorder: its hash and how much load it carried. */
export interface KeySample {
  hash: bigint;
  weight: number;
}

export interface PartitionKeySamples {
  partitionId: number;
  samples: KeySample[];
}

/** Capacity of one shard (active or spare), in load-score units. */
export interface ShardCapacity {
  shardId: number;
  capacity: number;
}

export interface PartitionSize {
  partitionId: number;
  bytes: number;
  rows: number;
}

/** What an operator configures; loads are load-score units, utilizations are fractions of capacity. */
export interface Thresholds {
  partitionMaxLoad: number;
  partitionMinLoad: number;
  /** Fraction of a shard's capacity the forecast may use (0..1]. */
  shardMaxUtilization: number;
  /** Below this fraction (whole horizon) a shard is a candidate for draining. */
  shardMinUtilization: number;
  partitionMaxBytes: number;
  /** Target p99 latency; with baseP99Ms it caps utilization (p99 = base / (1 - u)). */
  targetP99Ms: number;
  /** p99 of an idle shard. */
  baseP99Ms: number;
  /** Optional per-partition throughput cap (queries/s), compared with forecast.throughputP90. */
  partitionMaxThroughput?: number;
}

/** Tuning knobs (defaults in decider.ts, each a named constant with its unit). */
export interface PlannerKnobs {
  /** Relative band below a maximum that counts as "still fine, do not undo" (0.1 = 10 %). */
  hysteresis: number;
  /** No undo (merge back, move back, drain an added shard, …) within this many seconds. */
  cooldownSeconds: number;
  /** Split pieces aim at this fraction of partitionMaxLoad at the p90 peak. */
  splitFill: number;
  /** A shard is drained only when the rest holds the forecast for this long. */
  drainLowSeconds: number;
  /** Jobs are planned to finish this long before the predicted crossing. */
  safetyMarginSeconds: number;
  /** A forecast miss is assumed to persist this long (actual load replaces the forecast). */
  missHoldSeconds: number;
  /** Placement fixes shard overloads predicted within this window; later ones wait for later plans. */
  placementLookaheadSeconds: number;
  /** Never drain below this many active shards. */
  minShards: number;
  /** Moves the executor runs at once (the planner serializes the rest in its schedule). */
  maxConcurrentMoves: number;
  /**
   * When the spare pool cannot keep every shard under its utilization cap, placement may fill
   * shards up to this fraction of the latency-derived limit instead (headroom is given up, the SLO
   * is not) and still asks for capacity; 0 turns this off (then nothing is moved at all).
   */
  shortageFill: number;
  /**
   * A shard's forecast p90 may reach this fraction of the latency-derived utilization, while its
   * expected load is held to the utilization cap (load.ts). Below shortageFill: the room stretched
   * placement gives up when short of servers is not given up in normal placement. 0 holds the p90
   * itself to the cap (the plain rule).
   */
  upperFill: number;
  /**
   * Relative rise over one measurement interval (0.25 = 25 %) above which a partition measured
   * over its forecast is taken to be surging: its stand-in load is the measured load plus that
   * rise once more (the load by the time the next measurement could be acted on). 0 turns it off.
   */
  surgeRise: number;
  /**
   * A surging partition that must split is cut into even pieces of at most this many seconds of
   * copying at the mover's full throughput, so the piece that carries the surge can leave its hot
   * shard (where the mover is throttled) quickly. 0 splits it like any other partition.
   */
  surgePieceSeconds: number;
}

export type ActionKind = 'split' | 'merge' | 'move' | 'add-shard' | 'drain-shard';

/** A past action, for cooldown and thrash checks. Ranges are the affected hash range. */
export interface ActionRecord {
  kind: ActionKind;
  atMs: number;
  lo?: bigint;
  hi?: bigint;
  /** For splits: the split point. */
  at?: bigint;
  fromShard?: number;
  toShard?: number;
  shardId?: number;
}

/** A job the mover is running (or has queued) right now. */
export interface RunningJob {
  jobId: number | string;
  partitionId: number;
  kind: 'split' | 'merge' | 'move';
  /** For a move: where the partition will live, so its load counts there. */
  toShard?: number;
}

export interface MoverModel {
  /** Measured copy throughput of one move job. */
  throughputBytesPerSec: number;
  /** Measured cutover pause plus fixed per-job overhead. */
  cutoverSeconds: number;
}

export interface ActualLoad {
  partitionId: number;
  load: number;
  /**
   * Load measured in the interval before that one, if known. A partition above its forecast whose
   * load rose by more than surgeRise over the last interval is a surge: the planner takes it to rise
   * once more by as much before the next measurement can be acted on.
   */
  previous?: number;
}

export interface PlannerInput {
  nowMs: number;
  routing: RoutingTable;
  /** Capacity of each shard that currently holds (or may hold) partitions. */
  shards: ShardCapacity[];
  /** Spare servers that may be added. */
  spareShards: ShardCapacity[];
  forecasts: PartitionForecast[];
  keySamples?: PartitionKeySamples[];
  sizes?: PartitionSize[];
  thresholds: Thresholds;
  knobs?: Partial<PlannerKnobs>;
  history?: ActionRecord[];
  mover: MoverModel;
  runningJobs?: RunningJob[];
  /** Load measured in the last interval, for the reactive fallback. */
  actual?: ActualLoad[];
}

export interface HashRange {
  lo: bigint;
  hi: bigint;
}

/**
 * What a step does. Partition ids below zero are provisional: pieces that a split earlier in the
 * same plan creates; the executor maps them by `range`.
 */
export type StepAction =
  | { kind: 'split'; partitionId: number; at: bigint; newPartitionId: number }
  | { kind: 'move'; partitionId: number; fromShard: number; toShard: number }
  | { kind: 'merge'; a: number; b: number }
  | { kind: 'add-shard'; spare: number }
  | { kind: 'drain-shard'; shard: number }
  | { kind: 'needs-capacity'; shards: number; capacity: number };

export type StartReason = 'low-window' | 'now-urgent' | 'now-no-window' | 'now-no-deadline' | 'with-next-step' | 'asks-operator';

export interface PredictedLoad {
  /** When the load is predicted (the peak or the crossing). */
  atMs: number;
  mean: number;
  p10: number;
  p90: number;
  /** The threshold the load is compared with. */
  limit: number;
}

export interface PlanStep {
  /** 1-based, stable within one plan: `APPLY PLAN STEP n`. */
  n: number;
  action: StepAction;
  /** The hash range the step acts on (for add/drain/needs-capacity: the whole key space). */
  range: HashRange;
  startAtMs: number;
  startReason: StartReason;
  /** Latest safe finish (the predicted crossing minus the safety margin), if any. */
  deadlineMs?: number;
  why: string;
  bytesToMove: number;
  estimatedSeconds: number;
  dependsOn: number[];
  trigger: 'forecast' | 'reactive' | 'size' | 'scale-down';
  predicted?: PredictedLoad;
}

export type ReasonCode =
  | 'cooldown'
  | 'hysteresis'
  | 'job-running'
  | 'forecast-missing'
  | 'forecast-nan'
  | 'spare-pool-empty'
  | 'no-split-point'
  | 'no-target'
  | 'min-shards';

/** Something the planner decided not to do, and why. */
export interface PlanReason {
  code: ReasonCode;
  partitionId?: number;
  shardId?: number;
  message: string;
}

/** Actual load crossed a limit the forecast said it would not. */
export interface ForecastMiss {
  partitionId?: number;
  shardId?: number;
  atMs: number;
  actual: number;
  forecastP90: number;
  limit: number;
  message: string;
}

export interface Plan {
  /** Content hash: `APPLY PLAN STEP n` names a plan by id so a re-plan cannot shift the numbering. */
  planId: string;
  createdAtMs: number;
  steps: PlanStep[];
  reasons: PlanReason[];
  forecastMiss: ForecastMiss[];
  /** Predicted peak utilization per shard after the plan (p90, over the horizon). */
  shardPeaks: { shardId: number; peakLoad: number; capacity: number }[];
}
