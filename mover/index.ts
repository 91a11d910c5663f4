// Public API of the mover: what the admin console, the leader loop and the composition root may import.
export { Mover, DEFAULT_SETTINGS, type MoverOptions, type MoverSettings, type MoverHooks, type MoverLog, type JobSummary, type JobDetail } from './mover.js';
export { JobState, TRANSITIONS, canTransition, isActive, pastPointOfNoReturn } from './states.js';
export type { Job, JobEvent, JobProgress, JobSettings, VerificationResult, CutoverRecord } from './jobs.js';
export { NoProxyRoutingControl, InProcessRoutingControl, type RoutingControl, type HeldRange, type InProcessProxy } from './routing-control.js';
export { CUTOVER_STEP_NAMES, DryRunCutover, runCutover, type CutoverSteps, type CutoverDecision } from './cutover.js';
export { FENCE_SQLSTATE, MoverError, isTransient } from './errors.js';
export { copyPipe } from './copy-protocol.js';
export { ShardOps, serverKey, type ShardOpsOptions, type ShardProvisioner, type ProvisionedShard, type AddShardResult, type DrainShardResult, type ShardRow } from './shard-ops.js';
export { placePartitions, type PlacementTarget, type Movable, type Placement } from './placement.js';
export { capacityRefusal, fmtBytes, type ShardRoom } from './sizes.js';
export type { PartitionVerification, VerifyRow } from './verify-partition.js';
