// Scatter plans by statement text: the planner parses with libpg-query, so repeated queries reuse the plan.
import { LRUCache } from 'lru-cache';
import type { SchemaView } from '../router/index.js';
import { planScatter, type ScatterPlan } from './planner.js';

/** Distinct scatter statements kept; the text includes literals (LIMIT values change the plan). */
const DEFAULT_SIZE = 1000;

export class ScatterPlanCache {
  private readonly cache = new LRUCache<string, { plan: ScatterPlan } | { error: unknown }>({ max: DEFAULT_SIZE });
  private version = -1;

  /** The plan for `sql` under routing version `version` (tables may change between versions). Throws refusals. */
  plan(sql: string, schema: SchemaView, version: number): ScatterPlan {
    if (version !== this.version) {
      this.cache.clear();
      this.version = version;
    }
    let hit = this.cache.get(sql);
    if (!hit) {
      try {
        hit = { plan: planScatter(sql, schema) };
      } catch (error) {
        hit = { error };
      }
      this.cache.set(sql, hit);
    }
    if ('error' in hit) throw hit.error;
    return hit.plan;
  }
}
