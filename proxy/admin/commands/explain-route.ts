// EXPLAIN ROUTE <sql>: how the proxy would route a statement, without running it.
import { table, type AdminCommand } from '../result.js';
import type { StatementPlan } from '../../router/index.js';
import { routeOf } from '../../session/route.js';
import { planScatter } from '../../scatter/index.js';
import type { SchemaView } from '../../router/index.js';

/** The scatter planner's merge steps for a read spanning shards, or its refusal. */
function mergeSteps(sql: string, schema: SchemaView): { merged: boolean; text: string } {
  try {
    return { merged: true, text: planScatter(sql, schema).steps.join('; ') };
  } catch (err) {
    const e = err as Error & { sqlstate?: string };
    return { merged: false, text: `refused: ${e.sqlstate ?? 'XX000'}: ${e.message}` };
  }
}

function describe(plan: StatementPlan): { kind: string; tables: string; detail: string } {
  switch (plan.kind) {
    case 'keyed':
      return { kind: plan.write ? 'single-shard write' : 'single-shard read', tables: plan.table, detail: `by key: ${plan.keys.map(keyText).join(', ')}` };
    case 'insert-rows':
      return { kind: 'insert split per shard', tables: plan.table, detail: `${plan.keys.length} rows` };
    case 'insert-select':
      return { kind: 'insert … select on every shard', tables: plan.table, detail: `each shard keeps the rows whose key (column ${plan.keyPosition + 1}) it owns` };
    case 'scatter-read':
      return { kind: 'scatter read', tables: plan.tables.join(', '), detail: 'no usable shard key' };
    case 'broadcast':
      return { kind: 'broadcast', tables: plan.tables.join(', '), detail: plan.reason };
    case 'reference-read':
      return { kind: 'reference read (any one shard)', tables: plan.tables.join(', '), detail: '' };
    case 'unsharded':
      return { kind: 'unsharded (primary shard)', tables: plan.tables.join(', '), detail: '' };
    case 'transaction':
      return { kind: 'transaction control', tables: '', detail: plan.op };
    case 'session':
      return { kind: 'session', tables: '', detail: plan.op + (plan.name ? ` ${plan.name}` : '') };
    case 'cursor':
      return { kind: 'cursor', tables: '', detail: plan.op };
    case 'copy':
      return { kind: `copy ${plan.direction}`, tables: plan.table, detail: plan.format };
    case 'unsupported':
      return { kind: 'refused', tables: '', detail: `${plan.sqlstate}: ${plan.message}` };
  }
}

function keyText(k: { literal: number } | { param: number }): string {
  return 'param' in k ? `$${k.param} (resolved at Bind)` : `literal #${k.literal + 1}`;
}

export const explainRoute: AdminCommand = {
  syntax: 'EXPLAIN ROUTE <sql>',
  description: 'how a statement would be routed: plan kind, tables, shards',
  pattern: /^explain\s+route\s+([\s\S]+)$/i,
  async run({ proxy }, m) {
    const sql = m[1]!;
    const { analysis, literals } = proxy.router.analyze(sql);
    const index = proxy.routing();
    const rows = analysis.plans.map((plan, i) => {
      const d = describe(plan);
      if (analysis.plans.length === 1 && (plan.kind === 'scatter-read' || (plan.kind === 'keyed' && !plan.write && plan.keys.length > 1) || (plan.kind === 'keyed' && !plan.write && plan.keys.some((k) => 'array' in k)))) {
        const m = mergeSteps(sql, index);
        if (plan.kind === 'scatter-read') d.kind = m.merged ? 'scatter read (merged)' : 'scatter read (refused)';
        d.detail = `${d.detail}; when several shards: ${m.text}`;
      }
      let shards: string;
      try {
        const r = routeOf(plan, literals, null, index);
        shards = r === 'any' ? `any (${index.primaryShardId} when idle)` : r === 'all' ? index.dataShardIds().join(', ') : r.join(', ');
      } catch (err) {
        shards = `error: ${(err as Error).message}`;
      }
      return [i + 1, d.kind, d.tables, shards, d.detail, index.version];
    });
    return table(['statement', 'route', 'tables', 'shards', 'detail', 'routing_version'], rows);
  },
};
