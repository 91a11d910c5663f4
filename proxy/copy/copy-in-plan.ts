// Decides how a COPY … FROM STDIN plan runs on several shards: split by key or copied to all, and with what.
import { PgtideError } from '../../config/errors.js';
import type { RoutingIndex } from '../../config/routing.js';
import type { StatementPlan } from '../router/index.js';
import { copyFormatOf, type CopyFormat } from './copy-format.js';
import { keyRouter, type KeyRouter } from './key-hash.js';

export class CopyPlanError extends PgtideError {}

export interface CopyInSetup {
  mode: 'split' | 'broadcast';
  /** Relation name as Postgres prints it in CONTEXT lines. */
  table: string;
  /** Schema-qualified, quoted: for catalog lookups under any search_path. */
  qualifiedTable: string;
  format: CopyFormat;
  columns: readonly string[] | undefined;
  keyColumn: string;
  router: KeyRouter | null;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** How to run a COPY FROM plan on a sharded or reference table; throws 0A000/22023 for what cannot work. */
export function copyInSetup(plan: Extract<StatementPlan, { kind: 'copy' }>, index: RoutingIndex): CopyInSetup {
  const info = index.table(plan.table);
  const dot = plan.table.lastIndexOf('.');
  const table = dot < 0 ? plan.table : plan.table.slice(dot + 1);
  const qualifiedTable = dot < 0 ? `public.${quoteIdent(plan.table)}` : `${quoteIdent(plan.table.slice(0, dot))}.${quoteIdent(table)}`;
  const format = copyFormatOf(plan.format, plan.options);
  if (!info || info.kind === 'reference') {
    return { mode: 'broadcast', table, qualifiedTable, format, columns: plan.columns, keyColumn: '', router: null };
  }
  const keyColumn = info.keyColumn!;
  if (plan.columns && !plan.columns.includes(keyColumn)) {
    throw new CopyPlanError('COPY_WITHOUT_KEY', `COPY into sharded table ${plan.table} must include the shard key column ${keyColumn}`, {
      sqlstate: '0A000', hint: 'the proxy routes each row by its key, so a key the server would fill in (a default, a sequence) cannot be routed: add the column to the COPY',
    });
  }
  return { mode: 'split', table, qualifiedTable, format, columns: plan.columns, keyColumn, router: keyRouter(index, info) };
}
