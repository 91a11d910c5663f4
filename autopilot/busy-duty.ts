// How much of the time background training may work, from how busy this proxy's event loop is.
import { performance } from 'node:perf_hooks';
import { dutyForUtilization } from '../predictor/index.js';

/**
 * Returns a sampler: each call gives the duty for the event-loop utilisation since the previous
 * call (the first covers the time since creation). The forecast runner polls it every 250 ms.
 */
export function proxyBusyDuty(elu: typeof performance.eventLoopUtilization = performance.eventLoopUtilization.bind(performance)): () => number {
  let prev = elu();
  return () => {
    const cur = elu();
    const delta = elu(cur, prev);
    prev = cur;
    return dutyForUtilization(delta.utilization);
  };
}
