// Scatter planner: a SELECT that reads several shards → the SQL each shard runs + how the proxy merges the answers, or 0A000.
//
// Pure function of the statement text and the table metadata (no I/O). Two shapes:
//
// - stream: no aggregation in the proxy. The shards run the query as written, minus OFFSET,
//   with LIMIT offset+limit, so each returns at most the rows that can reach the answer, sorted
//   by the same ORDER BY; the proxy k-way merges the sorted streams (or concatenates them when
//   there is no ORDER BY), skips OFFSET, stops at LIMIT and drops duplicates for DISTINCT. A
//   query whose GROUP BY includes the shard key is a stream too: every group lives on one shard,
//   so aggregates, HAVING and count(DISTINCT …) are complete there.
// - aggregate: GROUP BY without the key, or aggregates without GROUP BY. Each shard returns
//   partial aggregates per group (count → count, sum → sum, min/max as is, avg → sum + a
//   hidden count); HAVING, ORDER BY, LIMIT/OFFSET and DISTINCT are removed from the shard
//   query and applied by the proxy over the merged groups.
//
// Columns the proxy needs but the client did not ask for (sort keys missing from the select
// list, avg's counts, group keys, collation checks) are appended after the select list as
// hidden columns and cut off before rows reach the client.
//
// Collation: text cannot be ordered in JS the way a glibc/ICU collation orders it, so for every
// value the proxy compares (sort keys, min/max) the shard also returns whether the value's
// collation orders by bytes (C, POSIX, C.UTF-8, ucs_basic). If a text comparison is needed and
// the flag says otherwise, the merger refuses with 0A000 before emitting any row: the answer is
// then an error, never a wrongly ordered result. (COLLATE "C" in the query makes it mergeable.)
import { parseSync } from 'libpg-query';
import { relationKey } from '../../config/routing.js';
import type { SchemaView } from '../router/index.js';
import { byteToChar, callSpan, clauses, quoteIdent, splitItems, tokenize, trimTrailingWords, type Clause, type Tok } from './sql-text.js';
import { ScatterError } from './values.js';

// libpg-query returns untyped JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Node = any;

export type AggFn = 'count' | 'sum' | 'min' | 'max' | 'avg';

/** Where a merged value comes from: a shard column (first row of the group) or an aggregate. */
export type ValueRef = { k: 'col'; col: number } | { k: 'agg'; agg: number };

/** A column position: among the visible columns (from the left) or the hidden ones. */
export type ColRef = { visible: number } | { hidden: number };

export interface SortSpec<R> {
  ref: R;
  desc: boolean;
  nullsFirst: boolean;
  /** Hidden column saying whether the value's collation orders by bytes (null: none sent). */
  coll: number | null;
}

export interface AggSpec {
  fn: AggFn;
  /** Shard column of the partial (sum for avg). */
  col: number;
  /** avg: hidden column with the partial count. */
  countCol?: number;
  coll: number | null;
  text: string;
}

export interface OutputSpec {
  ref: ValueRef;
  /** A cast the proxy applies to a merged count/sum (`count(*)::int`). */
  cast?: { oid: number; bits: 16 | 32 | 64 | 0 };
}

export type HavingExpr =
  | { k: 'and' | 'or'; args: HavingExpr[] }
  | { k: 'not'; arg: HavingExpr }
  | { k: 'cmp'; op: string; l: HavingOperand; r: HavingOperand }
  | { k: 'null'; arg: HavingOperand; not: boolean };
export type HavingOperand = { k: 'ref'; ref: ValueRef; coll: number | null } | { k: 'const'; value: string | null; numeric: boolean };

export interface StreamMerge {
  mode: 'stream';
  hidden: number;
  sort: SortSpec<ColRef>[];
  offset: number;
  limit: number | null;
  distinct: boolean;
}

export interface AggregateMerge {
  mode: 'aggregate';
  /** Columns each shard row has (visible part = one per select-list item). */
  columns: number;
  hidden: number;
  groupCols: number[];
  aggs: AggSpec[];
  outputs: OutputSpec[];
  having: HavingExpr | null;
  sort: SortSpec<ValueRef>[];
  offset: number;
  limit: number | null;
  distinct: boolean;
}

export type MergeSpec = StreamMerge | AggregateMerge;

export interface ScatterPlan {
  shardSql: string;
  merge: MergeSpec;
  /** Human-readable merge steps (EXPLAIN ROUTE). */
  steps: string[];
}

const MERGEABLE_AGGS = new Set(['count', 'sum', 'min', 'max', 'avg']);
/** Aggregates whose partials cannot be combined: refused by name. */
const OTHER_AGGS = new Set([
  'array_agg', 'string_agg', 'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg', 'json_arrayagg', 'json_objectagg', 'bool_and', 'bool_or', 'every',
  'bit_and', 'bit_or', 'bit_xor', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr', 'covar_pop', 'covar_samp',
  'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy', 'percentile_cont',
  'percentile_disc', 'mode', 'xmlagg', 'range_agg', 'range_intersect_agg', 'any_value', 'grouping',
]);
const CAST_TYPES: Record<string, { oid: number; bits: 16 | 32 | 64 | 0 }> = {
  int2: { oid: 21, bits: 16 }, smallint: { oid: 21, bits: 16 }, int4: { oid: 23, bits: 32 }, int: { oid: 23, bits: 32 }, integer: { oid: 23, bits: 32 },
  int8: { oid: 20, bits: 64 }, bigint: { oid: 20, bits: 64 }, numeric: { oid: 1700, bits: 0 }, decimal: { oid: 1700, bits: 0 },
};
const SORT_SUFFIX = new Set(['asc', 'desc', 'nulls', 'first', 'last']);

function refuse(construct: string, hint?: string): never {
  throw new ScatterError('SCATTER_UNSUPPORTED', `${construct} is not supported in a query that reads several shards`, { sqlstate: '0A000', ...(hint ? { hint } : {}) });
}

/** The AST without locations, for structural equality. */
function shape(n: Node): string {
  return JSON.stringify(n, (k, v) => (k === 'location' ? undefined : v));
}

function funcName(fc: Node): string {
  const names = (fc.funcname as Node[]).map((x) => x.String.sval as string);
  if (names.length > 2 || (names.length === 2 && names[0] !== 'pg_catalog')) return names.join('.');
  return names[names.length - 1]!;
}

function walk(n: Node, fn: (node: Node, type: string) => boolean | void): void {
  if (Array.isArray(n)) {
    for (const x of n) walk(x, fn);
    return;
  }
  if (!n || typeof n !== 'object') return;
  for (const [type, body] of Object.entries(n)) {
    if (body && typeof body === 'object' && /^[A-Z]/.test(type)) {
      if (fn(body, type) === false) continue;
    }
    walk(body, fn);
  }
}

/** Aggregate calls directly in this expression (not inside subqueries). */
function aggCalls(n: Node): Node[] {
  const out: Node[] = [];
  walk(n, (node, type) => {
    if (type === 'SubLink') return false;
    if (type === 'FuncCall') {
      if (node.over) refuse('a window function (OVER …)');
      const name = funcName(node);
      if (MERGEABLE_AGGS.has(name) || OTHER_AGGS.has(name)) {
        out.push(node);
        return false;
      }
    }
    return undefined;
  });
  return out;
}

function constInt(n: Node, what: string): number | null {
  if (!n) return null;
  const c = n.A_Const;
  if (c?.isnull) return null;
  if (c && c.ival !== undefined) return Number(c.ival.ival ?? 0);
  refuse(`a non-constant ${what}`, `write ${what} as an integer constant`);
}

/** Output column name as Postgres figures it (FigureColname), for ORDER BY names and aliases. */
function figureName(rt: Node): string {
  if (rt.name) return rt.name;
  const name = (n: Node): string | null => {
    if (n.ColumnRef) {
      const last = n.ColumnRef.fields[n.ColumnRef.fields.length - 1];
      return last.String ? last.String.sval : null;
    }
    if (n.FuncCall) return n.FuncCall.funcname[n.FuncCall.funcname.length - 1].String.sval;
    if (n.TypeCast) return name(n.TypeCast.arg) ?? n.TypeCast.typeName.names[n.TypeCast.typeName.names.length - 1].String.sval;
    if (n.CaseExpr) return 'case';
    return null;
  };
  return name(rt.val) ?? '?column?';
}

interface TableRef {
  table: string;
  sharded: boolean;
  keyColumn?: string;
  /** On the nullable side of an outer join. */
  nullable: boolean;
}

/** Aliases of the FROM clause; refuses outer joins that would repeat reference-table rows per shard. */
function fromTables(from: Node[], schema: SchemaView): Map<string, TableRef> {
  const out = new Map<string, TableRef>();
  const visit = (n: Node, nullable: boolean): { hasReference: boolean; hasSharded: boolean } => {
    if (n.RangeVar) {
      const rv = n.RangeVar;
      const table = relationKey(rv.schemaname, rv.relname);
      const info = schema.table(table);
      const sharded = info?.kind === 'sharded';
      const ref: TableRef = { table, sharded, nullable };
      if (sharded && info?.keyColumn) ref.keyColumn = info.keyColumn;
      out.set(rv.alias?.aliasname ?? rv.relname, ref);
      return { hasReference: !sharded, hasSharded: sharded };
    }
    if (n.JoinExpr) {
      const j = n.JoinExpr;
      const jt = j.jointype as string;
      const l = visit(j.larg, nullable || jt === 'JOIN_RIGHT' || jt === 'JOIN_FULL');
      const r = visit(j.rarg, nullable || jt === 'JOIN_LEFT' || jt === 'JOIN_FULL');
      // A reference table's unmatched rows would come back once from every shard.
      if (((jt === 'JOIN_LEFT' || jt === 'JOIN_FULL') && l.hasReference && r.hasSharded) || ((jt === 'JOIN_RIGHT' || jt === 'JOIN_FULL') && r.hasReference && l.hasSharded)) {
        refuse('an outer join that keeps the unmatched rows of a reference table', 'put the sharded table on the preserved side, or use an inner join');
      }
      if (jt === 'JOIN_FULL') refuse('FULL JOIN');
      return { hasReference: l.hasReference || r.hasReference, hasSharded: l.hasSharded || r.hasSharded };
    }
    if (n.RangeSubselect) refuse('a subquery in FROM', 'select from the tables directly, or give the subquery a shard key');
    if (n.RangeFunction) return { hasReference: true, hasSharded: false };
    refuse('this FROM item');
  };
  for (const item of from) visit(item, false);
  return out;
}

/** Whether a ColumnRef names the shard key of a sharded table that is not on an outer join's nullable side. */
function isKeyColumn(n: Node, tables: Map<string, TableRef>, allowNullable: boolean): boolean {
  const cr = n?.ColumnRef;
  if (!cr) return false;
  const fields = (cr.fields as Node[]).map((f) => f.String?.sval as string | undefined);
  if (fields.some((f) => f === undefined)) return false;
  const col = fields[fields.length - 1]!;
  const ok = (t: TableRef | undefined) => !!t && t.sharded && t.keyColumn === col && (allowNullable || !t.nullable);
  if (fields.length === 2) return ok(tables.get(fields[0]!));
  if (fields.length === 1) return [...tables.values()].some(ok);
  return false;
}

class Rewriter {
  readonly toks: Tok[];
  readonly clauses: Clause[];
  readonly char: (b: number) => number;
  readonly hidden: string[] = [];
  private readonly edits: { start: number; end: number; text: string }[] = [];

  constructor(readonly sql: string) {
    this.toks = tokenize(sql);
    this.clauses = clauses(sql, this.toks);
    this.char = byteToChar(sql);
  }

  clause(word: string): Clause | undefined {
    return this.clauses.find((c) => c.word === word);
  }

  text(start: number, end: number): string {
    return this.sql.slice(start, end);
  }

  /** Add a hidden column; returns its index among the hidden ones. */
  addHidden(expr: string): number {
    this.hidden.push(`${expr} AS ${quoteIdent(`__pgtide_${this.hidden.length + 1}`)}`);
    return this.hidden.length - 1;
  }

  /**
   * Collation check of an expression: does its collation order by bytes? Three comparisons of
   * constants that byte order and linguistic collations answer differently, made in the
   * expression's collation: `CASE WHEN false THEN (expr)::text ELSE 'a' END` folds to the constant
   * 'a' carrying that collation, so the planner folds the whole check to true/false and no row
   * pays for it (pg_collation_for() per row cost ~3 µs, 7× a top-N scan).
   */
  addCollationFlag(expr: string): number {
    const x = (v: string) => `(CASE WHEN false THEN (${expr})::text ELSE '${v}' END)`;
    return this.addHidden(`(NOT ${x('a')} < 'B' AND ${x('Z')} < 'a' AND ${x('é')} > 'z')`);
  }

  replace(start: number, end: number, text: string): void {
    this.edits.push({ start, end, text });
  }

  build(targetEnd: number): string {
    if (this.hidden.length > 0) this.edits.push({ start: targetEnd, end: targetEnd, text: `, ${this.hidden.join(', ')}` });
    let out = this.sql;
    for (const e of [...this.edits].sort((a, b) => b.start - a.start || b.end - a.end)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
    return out;
  }
}

/** Plan a read that spans shards. `sql` is one SELECT statement. */
export function planScatter(sqlIn: string, schema: SchemaView): ScatterPlan {
  const sql = sqlIn.replace(/[\s;]+$/, '');
  const parsed = parseSync(sql);
  if (parsed.stmts.length !== 1) refuse('a multi-statement query');
  const stmt = parsed.stmts[0].stmt;
  const sel = stmt.SelectStmt;
  if (!sel) refuse(`${Object.keys(stmt)[0]}`);
  if (sel.op !== 'SETOP_NONE') refuse(sel.op.replace('SETOP_', '').replace('_', ' '), 'run each side of the set operation separately');
  if (sel.withClause) refuse('WITH (common table expressions)');
  if (sel.valuesLists) refuse('VALUES');
  if (sel.intoClause) refuse('SELECT INTO');
  if (sel.windowClause) refuse('WINDOW');
  if (sel.limitOption === 'LIMIT_OPTION_WITH_TIES') refuse('FETCH … WITH TIES');
  const distinctOn = Array.isArray(sel.distinctClause) && sel.distinctClause.some((d: Node) => d && Object.keys(d).length > 0);
  if (distinctOn) refuse('DISTINCT ON');
  const distinct = Array.isArray(sel.distinctClause);
  const targets: Node[] = (sel.targetList ?? []).map((t: Node) => t.ResTarget);
  const tables = fromTables(sel.fromClause ?? [], schema);
  const groupItems: Node[] = sel.groupClause ?? [];
  for (const g of groupItems) if (g.GroupingSet) refuse('GROUPING SETS, ROLLUP or CUBE');
  const limit = constInt(sel.limitCount, 'LIMIT');
  const offset = constInt(sel.limitOffset, 'OFFSET') ?? 0;
  if ((limit !== null && limit < 0) || offset < 0) refuse('a negative LIMIT or OFFSET');

  const rw = new Rewriter(sql);
  const selClause = rw.clauses[0];
  if (!selClause || selClause.word !== 'select') refuse('this statement shape');
  // The select list: after SELECT [ALL | DISTINCT] up to the next clause.
  let listStart = selClause.bodyStart;
  const afterSelect = rw.toks.find((t) => t.start >= listStart);
  let distinctSpan: [number, number] | null = null;
  if (afterSelect && (afterSelect.text === 'distinct' || afterSelect.text === 'all') && afterSelect.depth === 0) {
    if (afterSelect.text === 'distinct') distinctSpan = [afterSelect.start, afterSelect.end];
    listStart = afterSelect.end;
  }
  const items = splitItems(rw.toks, listStart, selClause.end);
  if (items.length !== targets.length || targets.some((t, i) => rw.char(t.location) < items[i]![0] || rw.char(t.location) >= items[i]![1])) {
    refuse('this select list (pgtide could not map its text to the parsed query)');
  }
  const targetEnd = items[items.length - 1]![1];
  const hasStar = targets.some((t) => t.val.ColumnRef?.fields.some((f: Node) => f.A_Star));
  /** Text of target i without its alias. */
  const exprText = (i: number): string => {
    const [s, e] = items[i]!;
    if (!targets[i]!.name) return rw.text(s, e);
    const inside = rw.toks.filter((t) => t.start >= s && t.end <= e);
    let k = inside.length - 2;
    if (inside[k]?.text === 'as' && inside[k]!.depth === 0) k--;
    return rw.text(s, inside[k]!.end);
  };

  const targetAggs = targets.map((t) => aggCalls(t.val));
  const havingAggs = sel.havingClause ? aggCalls(sel.havingClause) : [];
  const sortItems: Node[] = (sel.sortClause ?? []).map((s: Node) => s.SortBy);
  for (const s of sortItems) if (s.sortby_dir === 'SORTBY_USING') refuse('ORDER BY … USING');
  const sortAggs = sortItems.flatMap((s) => aggCalls(s.node));
  const aggregated = groupItems.length > 0 || targetAggs.some((a) => a.length > 0) || havingAggs.length > 0 || sortAggs.length > 0;
  // The ORDER BY / GROUP BY item spans (text) to cross-check with the AST.
  const orderClause = rw.clause('order');
  const sortSpans = orderClause ? splitItems(rw.toks, orderClause.bodyStart, orderClause.end) : [];
  if (sortSpans.length !== sortItems.length) refuse('this ORDER BY (pgtide could not map its text to the parsed query)');
  const sortExprText = (i: number): string => {
    const [s, e] = sortSpans[i]!;
    return rw.text(s, trimTrailingWords(rw.toks, s, e, SORT_SUFFIX));
  };
  const groupClause = rw.clause('group');
  const groupSpans = groupClause ? splitItems(rw.toks, groupClause.bodyStart, groupClause.end) : [];
  if (groupSpans.length !== groupItems.length) refuse('this GROUP BY (pgtide could not map its text to the parsed query)');

  const positional = (n: Node, what: string): number | null => {
    const c = n.A_Const;
    if (!c || c.ival === undefined) return null;
    const p = Number(c.ival.ival ?? 0);
    if (p < 1 || (p > targets.length && !hasStar)) refuse(`${what} position ${p} out of range`);
    return p - 1;
  };
  /** A select-list item this expression denotes (ORDER BY rules: position, output name, same expression). */
  const matchTarget = (n: Node, byName: boolean): number | null => {
    const p = positional(n, 'ORDER BY');
    if (p !== null) return p;
    if (hasStar) return null;
    if (byName && n.ColumnRef && n.ColumnRef.fields.length === 1 && n.ColumnRef.fields[0].String) {
      const name = n.ColumnRef.fields[0].String.sval;
      const hits = targets.map((t, i) => (figureName(t) === name ? i : -1)).filter((i) => i >= 0);
      if (hits.length === 1) return hits[0]!;
    }
    const s = shape(n);
    const i = targets.findIndex((t) => shape(t.val) === s);
    return i >= 0 ? i : null;
  };
  const limitPush = limit === null ? null : limit + offset;
  const steps: string[] = [];

  // GROUP BY on the shard key: every group is whole on one shard, so the shards do all of it.
  const groupedByKey = groupItems.length > 0 && groupItems.some((g) => {
    const p = positional(g, 'GROUP BY');
    return isKeyColumn(p !== null ? targets[p]?.val : g, tables, false);
  });

  if (!aggregated || groupedByKey) {
    const sort: SortSpec<ColRef>[] = sortItems.map((s, i) => {
      const dir = {
        desc: s.sortby_dir === 'SORTBY_DESC',
        nullsFirst: s.sortby_nulls === 'SORTBY_NULLS_DEFAULT' ? s.sortby_dir === 'SORTBY_DESC' : s.sortby_nulls === 'SORTBY_NULLS_FIRST',
      };
      const c = s.node.A_Const;
      if (hasStar && c && c.ival !== undefined) {
        // A position in the star-expanded list: its expression is only known to the shards,
        // so no collation check is sent (text there is refused by the merger).
        return { ref: { visible: Number(c.ival.ival ?? 0) - 1 }, ...dir, coll: null };
      }
      const t = matchTarget(s.node, true);
      const ref: ColRef = t !== null ? { visible: t } : { hidden: rw.addHidden(sortExprText(i)) };
      return { ref, ...dir, coll: rw.addCollationFlag(t !== null ? exprText(t) : sortExprText(i)) };
    });
    // LIMIT offset+limit on the shards, no OFFSET.
    const lim = rw.clause('limit');
    const off = rw.clause('offset');
    const fetch = rw.clause('fetch');
    for (const c of [lim, off, fetch]) if (c) rw.replace(c.start, c.end, '');
    if (limitPush !== null) {
      const at = Math.min(...[lim, off, fetch].filter((c): c is Clause => !!c).map((c) => c.start));
      rw.replace(at, at, `LIMIT ${limitPush} `);
    }
    const merge: StreamMerge = { mode: 'stream', hidden: rw.hidden.length, sort, offset, limit, distinct };
    if (sort.length > 0) steps.push(`merge ${sortItems.length} sorted stream key${sort.length > 1 ? 's' : ''} (k-way)`);
    else steps.push('concatenate shard rows');
    if (distinct) steps.push('drop duplicate rows (DISTINCT)');
    if (offset > 0) steps.push(`skip ${offset} rows (OFFSET)`);
    if (limit !== null) steps.push(`stop after ${limit} rows (LIMIT; shards return at most ${limitPush})`);
    return { shardSql: rw.build(targetEnd), merge, steps };
  }

  // ---- aggregate mode ----
  if (hasStar) refuse('* in the select list of an aggregate query');
  const aggs: AggSpec[] = [];
  const aggByShape = new Map<string, number>();
  const columns = targets.length;
  const hiddenBase = () => columns; // hidden column j is shard column columns + j
  /** Register an aggregate call; `col` given when it replaces a select-list item in place. */
  const addAgg = (fc: Node, col: number | null): number => {
    const key = shape(fc);
    const known = aggByShape.get(key);
    if (known !== undefined && col === null) return known;
    const name = funcName(fc) as AggFn;
    if (!MERGEABLE_AGGS.has(name)) refuse(`aggregate ${name}() without GROUP BY on the shard key`, 'count, sum, min, max and avg can be merged across shards');
    if (fc.agg_filter) refuse(`${name}() FILTER (…)`);
    if (fc.agg_order) refuse(`${name}() with ORDER BY inside`);
    if (fc.agg_within_group) refuse('WITHIN GROUP');
    if (fc.func_variadic) refuse('VARIADIC');
    if (fc.agg_distinct && (name === 'count' || name === 'sum' || name === 'avg')) {
      const arg = fc.args?.[0];
      if (fc.args?.length !== 1 || !isKeyColumn(arg, tables, true)) {
        refuse(`${name}(DISTINCT …) on a column other than the shard key`, 'count(DISTINCT key) works, and so does any count(DISTINCT …) in a query grouped by the shard key');
      }
    }
    const start = rw.char(fc.location);
    const span = callSpan(rw.toks, start);
    if (!span) refuse('this aggregate call (pgtide could not find its text)');
    const call = rw.text(start, span.end);
    const args = rw.text(span.argsStart, span.argsEnd);
    const partial = name === 'avg' ? `sum(${args})` : call;
    let partialCol: number;
    if (col === null) partialCol = hiddenBase() + rw.addHidden(partial);
    else partialCol = col;
    const spec: AggSpec = { fn: name, col: partialCol, coll: null, text: call };
    if (name === 'avg') spec.countCol = hiddenBase() + rw.addHidden(`count(${args})`);
    if (name === 'min' || name === 'max') spec.coll = hiddenBase() + rw.addCollationFlag(call);
    aggs.push(spec);
    if (!aggByShape.has(key)) aggByShape.set(key, aggs.length - 1);
    return aggs.length - 1;
  };

  const outputs: OutputSpec[] = targets.map((t, i) => {
    const calls = targetAggs[i]!;
    if (calls.length === 0) return { ref: { k: 'col', col: i } };
    let val = t.val;
    let cast: OutputSpec['cast'];
    if (val.TypeCast && val.TypeCast.arg.FuncCall && calls.length === 1 && calls[0] === val.TypeCast.arg.FuncCall) {
      const tn = val.TypeCast.typeName;
      const name = tn.names[tn.names.length - 1].String.sval as string;
      if (tn.typmods || tn.arrayBounds || !CAST_TYPES[name]) refuse(`a cast of an aggregate to ${name}`, 'cast to int, bigint or numeric, or cast in the application');
      cast = CAST_TYPES[name];
      val = val.TypeCast.arg;
    }
    if (!val.FuncCall || calls.length !== 1 || calls[0] !== val.FuncCall) {
      refuse('an expression over aggregates in the select list', 'select the aggregates themselves and combine them in the application');
    }
    const fc = val.FuncCall;
    const start = rw.char(fc.location);
    const span = callSpan(rw.toks, start);
    if (!span) refuse('this aggregate call (pgtide could not find its text)');
    const agg = addAgg(fc, i);
    const a = aggs[agg]!;
    // The partial replaces the item in place, named as Postgres would name the original.
    rw.replace(items[i]![0], items[i]![1], `${a.fn === 'avg' ? `sum(${rw.text(span.argsStart, span.argsEnd)})` : a.text} AS ${quoteIdent(figureName(t))}`);
    return cast ? { ref: { k: 'agg', agg }, cast } : { ref: { k: 'agg', agg } };
  });

  // Group keys: a select-list item when the GROUP BY names one, else a hidden column.
  const groupCols = groupItems.map((g, i) => {
    const p = positional(g, 'GROUP BY');
    if (p !== null) {
      if (targetAggs[p]!.length > 0) refuse('GROUP BY on an aggregate');
      return p;
    }
    const s = shape(g);
    let t = targets.findIndex((x, j) => targetAggs[j]!.length === 0 && shape(x.val) === s);
    if (t < 0 && g.ColumnRef?.fields.length === 1 && g.ColumnRef.fields[0].String) {
      const name = g.ColumnRef.fields[0].String.sval;
      t = targets.findIndex((x, j) => targetAggs[j]!.length === 0 && x.name === name);
    }
    if (t >= 0) return t;
    return hiddenBase() + rw.addHidden(rw.text(groupSpans[i]![0], groupSpans[i]![1]));
  });
  const groupShapes = groupItems.map((g, i) => {
    const p = positional(g, 'GROUP BY');
    return { shape: shape(p !== null ? targets[p]!.val : g), col: groupCols[i]! };
  });
  /** A value the proxy can compute for a group: aggregate, group key or select-list item. */
  const valueOf = (n: Node, what: string): { ref: ValueRef; expr: string | null } => {
    let inner = n;
    if (inner.FuncCall && MERGEABLE_AGGS.has(funcName(inner.FuncCall))) {
      const agg = addAgg(inner.FuncCall, null);
      return { ref: { k: 'agg', agg }, expr: aggs[agg]!.text };
    }
    if (aggCalls(inner).length > 0) refuse(`an expression over aggregates in ${what}`);
    const s = shape(inner);
    const g = groupShapes.find((x) => x.shape === s);
    if (g) return { ref: { k: 'col', col: g.col }, expr: g.col < columns ? exprText(g.col) : null };
    const t = targets.findIndex((x, j) => targetAggs[j]!.length === 0 && shape(x.val) === s);
    if (t >= 0) return { ref: { k: 'col', col: t }, expr: exprText(t) };
    inner = null;
    refuse(`this expression in ${what} (only aggregates, GROUP BY expressions and constants are supported)`);
  };

  const havingOperand = (n: Node): HavingOperand => {
    let c = n;
    while (c.TypeCast && c.TypeCast.arg.A_Const) c = c.TypeCast.arg;
    if (c.A_Const) {
      const a = c.A_Const;
      if (a.isnull) return { k: 'const', value: null, numeric: false };
      if (a.ival !== undefined) return { k: 'const', value: String(a.ival.ival ?? 0), numeric: true };
      if (a.fval !== undefined) return { k: 'const', value: String(a.fval.fval), numeric: true };
      if (a.sval !== undefined) return { k: 'const', value: String(a.sval.sval ?? ''), numeric: false };
      if (a.boolval !== undefined) return { k: 'const', value: a.boolval.boolval ? 't' : 'f', numeric: false };
      refuse('this constant in HAVING');
    }
    if (c.A_Expr && c.A_Expr.kind === 'AEXPR_OP' && !c.A_Expr.lexpr && c.A_Expr.name[0].String.sval === '-' && c.A_Expr.rexpr.A_Const) {
      const o = havingOperand(c.A_Expr.rexpr);
      if (o.k === 'const' && o.numeric && o.value !== null) return { k: 'const', value: o.value.startsWith('-') ? o.value.slice(1) : `-${o.value}`, numeric: true };
    }
    const v = valueOf(c, 'HAVING');
    // Only text needs the check; aggregates carry their own (min/max), counts and sums need none.
    return { k: 'ref', ref: v.ref, coll: v.ref.k === 'agg' ? aggs[v.ref.agg]!.coll : v.expr ? hiddenBase() + rw.addCollationFlag(v.expr) : null };
  };
  const havingExpr = (n: Node): HavingExpr => {
    if (n.BoolExpr) {
      const b = n.BoolExpr;
      const args = (b.args as Node[]).map(havingExpr);
      if (b.boolop === 'NOT_EXPR') return { k: 'not', arg: args[0]! };
      return { k: b.boolop === 'AND_EXPR' ? 'and' : 'or', args };
    }
    if (n.A_Expr && n.A_Expr.kind === 'AEXPR_OP' && n.A_Expr.lexpr && n.A_Expr.name.length === 1) {
      const op = n.A_Expr.name[0].String.sval as string;
      if (!['=', '<>', '!=', '<', '<=', '>', '>='].includes(op)) refuse(`operator ${op} in HAVING`);
      return { k: 'cmp', op: op === '!=' ? '<>' : op, l: havingOperand(n.A_Expr.lexpr), r: havingOperand(n.A_Expr.rexpr) };
    }
    if (n.NullTest) return { k: 'null', arg: havingOperand(n.NullTest.arg), not: n.NullTest.nulltesttype === 'IS_NOT_NULL' };
    refuse('this HAVING condition', 'HAVING supports comparisons of aggregates and GROUP BY expressions with constants, AND, OR, NOT and IS [NOT] NULL');
  };
  const having = sel.havingClause ? havingExpr(sel.havingClause) : null;

  const sort: SortSpec<ValueRef>[] = sortItems.map((s) => {
    const t = matchTarget(s.node, true);
    let ref: ValueRef;
    let expr: string | null;
    if (t !== null) {
      ref = outputs[t]!.ref;
      expr = ref.k === 'agg' ? aggs[ref.agg]!.text : exprText(t);
      if (outputs[t]!.cast) refuse('ORDER BY a cast aggregate', 'order by the aggregate itself');
    } else {
      const v = valueOf(s.node, 'ORDER BY');
      ref = v.ref;
      expr = v.expr;
    }
    const coll = ref.k === 'agg' && aggs[ref.agg]!.coll !== null ? aggs[ref.agg]!.coll : ref.k === 'agg' ? null : expr ? hiddenBase() + rw.addCollationFlag(expr) : null;
    return {
      ref, desc: s.sortby_dir === 'SORTBY_DESC',
      nullsFirst: s.sortby_nulls === 'SORTBY_NULLS_DEFAULT' ? s.sortby_dir === 'SORTBY_DESC' : s.sortby_nulls === 'SORTBY_NULLS_FIRST',
      coll,
    };
  });

  // Strip what the proxy does itself: DISTINCT, HAVING, ORDER BY, LIMIT/OFFSET.
  if (distinctSpan) rw.replace(distinctSpan[0], distinctSpan[1], '');
  for (const w of ['having', 'order', 'limit', 'offset', 'fetch']) {
    const c = rw.clause(w);
    if (c) rw.replace(c.start, c.end, '');
  }
  const merge: AggregateMerge = { mode: 'aggregate', columns, hidden: rw.hidden.length, groupCols, aggs, outputs, having, sort, offset, limit, distinct };
  steps.push(groupItems.length > 0 ? `shards aggregate per group; proxy re-aggregates by ${groupItems.length} group key${groupItems.length > 1 ? 's' : ''} (hash)` : 'shards aggregate; proxy combines one row per shard');
  steps.push(`partials: ${aggs.map((a) => (a.fn === 'avg' ? `${a.text} = sum/count` : a.fn === 'count' ? `${a.text} = sum of counts` : `${a.text} = ${a.fn} of partials`)).join('; ')}`);
  if (having) steps.push('HAVING evaluated in the proxy over merged groups');
  if (distinct) steps.push('drop duplicate rows (DISTINCT)');
  if (sort.length > 0) steps.push('sort merged groups (ORDER BY)');
  if (offset > 0 || limit !== null) steps.push(`OFFSET ${offset}${limit !== null ? ` LIMIT ${limit}` : ''} over merged groups`);
  return { shardSql: rw.build(targetEnd), merge, steps };
}
