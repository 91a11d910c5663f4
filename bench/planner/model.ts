// The cluster model and planner thresholds the planner benchmark (and its tests) replay traces against.
import type { ClusterModel } from '../../planner/simulate.js';

/** Default cluster: 1,000-unit shards, 4 to start plus 16 spares, a 100 MB/s mover, 50 ms p99 SLO. */
export function defaultClusterModel(overrides: Partial<ClusterModel> = {}): ClusterModel {
  return {
    shardCapacity: 1000,
    initialShards: 4,
    spareShards: 16,
    baseP99Ms: 5,
    sloP99Ms: 50,
    // Stand-in for the real mover's measured throughput (bench/mover reports it).
    moverBytesPerSec: 100e6,
    cutoverSeconds: 0.1,
    moverOverhead: 0.05,
    thresholds: {
      partitionMaxLoad: 300,
      partitionMinLoad: 60,
      shardMaxUtilization: 0.7,
      shardMinUtilization: 0.4,
      partitionMaxBytes: 64e9,
      targetP99Ms: 50,
      baseP99Ms: 5,
    },
    horizonSeconds: 12 * 3600,
    forecastStepSeconds: 900,
    thrashWindowSeconds: 2 * 3600,
    ...overrides,
  };
}
