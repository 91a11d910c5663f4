// Where one plan must run, as the session sees it: some shards, every shard, or whichever is linked.
import type { RoutingIndex } from '../../config/routing.js';
import { resolveShards, type BoundParams, type StatementPlan } from '../router/index.js';

/**
 * 'any': the statement needs no particular shard (transaction control, SET, cursors, reference
 * reads) and goes to the server the session already holds, else the primary shard.
 */
export type Route = number[] | 'all' | 'any';

export function routeOf(plan: StatementPlan, literals: readonly string[], bound: BoundParams | null, index: RoutingIndex): Route {
  switch (plan.kind) {
    case 'transaction':
    case 'session':
    case 'cursor':
    case 'reference-read':
      return 'any';
    case 'unsharded':
      // No table at all (SELECT 1, SHOW, catalog functions): any server answers alike.
      return plan.tables.length === 0 ? 'any' : resolveShards(plan, literals, bound, index);
    case 'copy':
      if (!plan.query && plan.direction === 'to' && index.table(plan.table)?.kind === 'reference') return 'any';
      return resolveShards(plan, literals, bound, index);
    default:
      return resolveShards(plan, literals, bound, index);
  }
}
