// Public API of the scatter-gather executor: plan a multi-shard SELECT, merge the shards' answers.
export { planScatter, type ScatterPlan, type MergeSpec, type AggregateMerge, type StreamMerge } from './planner.js';
export { ScatterMerger, QUEUE_HIGH, QUEUE_LOW, type MergerSink } from './merger.js';
export { ScatterError } from './values.js';
export { ScatterPlanCache } from './cache.js';
export { filterStrays, StrayFilterCache, type StrayView } from './stray-filter.js';
