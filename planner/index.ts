// Public API of the planner area: the pure planner, its explanation, restore resolution, simulator and CLI core.
export { planResharding, DEFAULT_STEP_SECONDS } from './plan.js';
export {
  determine_sharding_strategy,
  validateThresholds,
  resolveKnobs,
  shardUtilizationCap,
  utilizationForLatency,
  p99AtUtilization,
  splitCount,
  DEFAULT_KNOBS,
  type ShardingStrategy,
} from './decider.js';
export { findSplitPoints, midpointSplit, type SplitResult } from './finder.js';
export { pickStart } from './schedule.js';
export { explainPlan, describeAction, planStep, stepsToApply } from './explain.js';
export {
  resolveRestoreParameters,
  partitionsNeeded,
  RESTORE_TOLERANCE,
  type RestoreUserParams,
  type RestoreForecastNeeds,
  type RestoreResolution,
  type OverrideEntry,
  type RestoreParameter,
} from './restore.js';
export { PlannerError, InvalidThresholdsError, InvalidParameterError } from './errors.js';
export type { ForecastProvider, ForecastRequest, AnnouncedEvent, LoadHistory } from './forecast-provider.js';
export { seasonalNaiveConformal } from './baseline-forecast.js';
export {
  simulate,
  staticLayout,
  traceHistory,
  prefixSums,
  cellLo,
  hashToCell,
  POLICY_NAMES,
  type SimTrace,
  type ClusterModel,
  type PolicyName,
  type PolicyResult,
  type CampaignReadiness,
  type ForecastProviderFactory,
  type SimulateOptions,
} from './simulate.js';
export { runSimulateCli, parseTraceCsv, traceFromCsv } from './cli.js';
export type * from './types.js';
