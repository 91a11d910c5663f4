// Cache-miss path: the libpg-query AST of one query string → one route plan per statement.
//
// The plan must depend only on the statement's shape, never on literal values, because it is
// cached by shape; key values are therefore referenced by literal index or $n. A plan that had
// to look at a literal value (COPY's DELIMITER ';') is marked volatile and not cached.
//
// Key recognition, per SELECT/UPDATE/DELETE block (a block is one FROM/WHERE scope; subqueries
// and CTEs are blocks of their own):
// - every sharded table mentioned in a block is an *occurrence*; occurrences joined by
//   `a.key = b.key` (in WHERE or JOIN … ON, or a correlated subquery's WHERE, same key space)
//   form one *group*: their rows with equal keys live on one shard, so the join is local;
// - a group is pinned by a top-level AND-conjunct of its block's WHERE: `key = const|$n`,
//   `const = key`, `key IN (consts)`, `key = ANY($n | '{…}' | ARRAY[…])`; an OR pins the union
//   of its branches only if every branch pins; casts around constants are looked through;
// - one group: pinned → keyed, else scatter (SELECT) or broadcast (UPDATE/DELETE); several
//   groups: all pinned by one key each → keyed with sameShard, else 0A000 cross-shard join.
// Anything not understood falls to the safe side (scatter / broadcast), never to one shard.
import type { TableInfo } from '../../config/types.js';
import { relationKey } from '../../config/routing.js';
import type { LexResult } from './lexer.js';
import type { KeyRef, SchemaView, StatementPlan } from './types.js';

// libpg-query returns the AST as untyped JSON; `Node` documents that we index into it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Node = any;

export interface StatementAnalysis {
  plan: StatementPlan;
  write: boolean;
}

export interface ParsedAnalysis {
  statements: StatementAnalysis[];
  /** Some plan depends on literal values: do not cache it by shape. */
  volatile: boolean;
  /** [start, end) char spans from the parser (authoritative when the lexer's split differs). */
  parserSpans: [number, number][];
}

type TableClass = 'sharded' | 'reference' | 'unsharded' | 'system';

interface Occurrence {
  id: number;
  name: string;
  info: TableInfo;
  /** Name the block refers to it by: alias, else relation name. */
  ref: string;
  schema: string | undefined;
  relname: string;
  block: Block;
}

interface Block {
  parent: Block | undefined;
  occurrences: Occurrence[];
  /** Names visible in this block (alias or relname) of every FROM item, sharded or not. */
  names: Set<string>;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_toast']);

const DDL_NODES = new Set([
  'IndexStmt', 'RenameStmt', 'CommentStmt', 'GrantStmt', 'GrantRoleStmt', 'ViewStmt', 'RuleStmt', 'SecLabelStmt',
  'ReassignOwnedStmt', 'DropOwnedStmt', 'CompositeTypeStmt', 'DefineStmt', 'DropStmt', 'TruncateStmt_', 'ImportForeignSchemaStmt',
]);

const UTILITY_NODES = new Set([
  'DoStmt', 'VacuumStmt', 'CheckPointStmt', 'ReindexStmt', 'ClusterStmt', 'LoadStmt', 'AlterSystemStmt', 'RefreshMatViewStmt',
  'CreatedbStmt', 'DropdbStmt', 'AlterDatabaseStmt', 'AlterDatabaseSetStmt', 'LockStmt', 'AlterRoleSetStmt',
]);

/**
 * Whether a DDL statement may run inside a transaction block. Postgres refuses CONCURRENTLY
 * (indexes) and statements on databases, tablespaces, subscriptions and the system configuration
 * there (25001); everything else is transactional DDL.
 */
function ddlRunsInTransaction(type: string, node: Node): boolean {
  if (/Database|Tablespace|TableSpace|Subscription|System/.test(type)) return false;
  return node?.concurrent !== true;
}

function unsupported(message: string, sqlstate = '0A000'): StatementPlan {
  return { kind: 'unsupported', sqlstate, message };
}

/** Strings of a List of String nodes. */
function names(list: Node[] | undefined): string[] {
  return (list ?? []).map((n: Node) => n.String?.sval ?? (n.A_Star ? '*' : ''));
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** Map byte offsets (libpg-query locations) to char offsets of a JS string. */
function byteToCharMap(sql: string): ((b: number) => number) {
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(sql)) return (b) => b;
  const map: number[] = [];
  for (let i = 0; i < sql.length; i++) {
    const c = sql.codePointAt(i)!;
    const len = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (let k = 0; k < len; k++) map.push(i);
    if (c >= 0x10000) i++;
  }
  map.push(sql.length);
  return (b) => map[b] ?? sql.length;
}

export class StatementAnalyzer {
  private readonly toChar: (b: number) => number;
  private volatile = false;
  private nextOcc = 0;
  private uf = new Map<number, number>();

  constructor(
    private readonly schema: SchemaView,
    private readonly sql: string,
    private readonly lexed: LexResult,
  ) {
    this.toChar = byteToCharMap(sql);
  }

  analyzeAll(parsed: Node): ParsedAnalysis {
    const out: StatementAnalysis[] = [];
    const spans: [number, number][] = [];
    for (const raw of parsed.stmts ?? []) {
      const startB = raw.stmt_location ?? 0;
      const start = this.toChar(startB);
      const end = raw.stmt_len ? this.toChar(startB + raw.stmt_len) : this.sql.length;
      spans.push([start, end]);
      out.push(this.statement(raw.stmt));
    }
    return { statements: out, volatile: this.volatile, parserSpans: spans };
  }

  // ---- literals -------------------------------------------------------------------------

  /** Index of the lexer literal starting at a parser location, or -1. */
  private literalAt(location: number | undefined): number {
    const pos = this.toChar(location ?? 0);
    const starts = this.lexed.literalStarts;
    let a = 0;
    let b = starts.length - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const s = starts[m]!;
      if (s === pos) return m;
      if (s < pos) a = m + 1;
      else b = m - 1;
    }
    return -1;
  }

  /** A KeyRef for a constant or parameter (through casts), or undefined. */
  private keyRef(node: Node, array = false): KeyRef | undefined {
    while (node?.TypeCast) node = node.TypeCast.arg;
    if (node?.ParamRef) {
      const n = node.ParamRef.number;
      return array ? { param: n, array: true } : { param: n };
    }
    const c = node?.A_Const;
    if (!c || c.isnull) return undefined;
    if (!c.ival && !c.sval && !c.fval) return undefined;
    const i = this.literalAt(c.location);
    if (i < 0) return undefined;
    // Bit strings and U&'…' (which may carry a UESCAPE) are not key values we decode.
    const first = this.sql.charCodeAt(this.lexed.literalStarts[i]!) | 0x20;
    if (first === 98 /* b */ || first === 120 /* x */ || first === 117 /* u */) return undefined;
    return array ? { literal: i, array: true } : { literal: i };
  }

  // ---- tables ---------------------------------------------------------------------------

  private classify(schema: string | undefined, relname: string): { name: string; cls: TableClass; info?: TableInfo } {
    const name = relationKey(schema, relname);
    const info = this.schema.table(name);
    if (info) return { name, cls: info.kind, info };
    if ((schema !== undefined && SYSTEM_SCHEMAS.has(schema)) || (schema === undefined && relname.startsWith('pg_'))) {
      return { name, cls: 'system' };
    }
    return { name, cls: 'unsharded' };
  }

  private find(id: number): number {
    let p = this.uf.get(id) ?? id;
    while (p !== id) {
      const gp = this.uf.get(p) ?? p;
      this.uf.set(id, gp);
      id = p;
      p = gp;
    }
    return p;
  }

  private union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.uf.set(ra, rb);
  }

  // ---- statements -----------------------------------------------------------------------

  statement(stmt: Node): StatementAnalysis {
    const type = Object.keys(stmt)[0]!;
    const node = stmt[type];
    if (type === 'SelectStmt') {
      const setting = this.setConfig(node);
      if (setting) return setting;
    }
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return this.dml(type, node);
      case 'TransactionStmt':
        return { plan: this.transaction(node), write: false };
      case 'VariableSetStmt':
        return { plan: this.variableSet(node), write: false };
      case 'VariableShowStmt':
        return { plan: { kind: 'unsharded', tables: [] }, write: false };
      case 'ConstraintsSetStmt':
        return { plan: { kind: 'transaction', op: 'set-local', name: 'constraints' }, write: false };
      case 'DiscardStmt':
        return { plan: { kind: 'session', op: 'discard', name: String(node.target ?? '').replace('DISCARD_', '').toLowerCase() }, write: false };
      case 'ListenStmt':
        return { plan: { kind: 'session', op: 'listen', name: node.conditionname }, write: false };
      case 'UnlistenStmt':
        return { plan: node.conditionname ? { kind: 'session', op: 'unlisten', name: node.conditionname } : { kind: 'session', op: 'unlisten' }, write: false };
      case 'NotifyStmt':
        // Listeners are on the session's home server (shard 0), so notifications go there.
        return { plan: { kind: 'unsharded', tables: [] }, write: true };
      case 'PrepareStmt': {
        const inner = this.statement(node.query);
        return { plan: { kind: 'session', op: 'prepare', name: node.name, plan: inner.plan }, write: false };
      }
      case 'ExecuteStmt':
        return { plan: { kind: 'session', op: 'execute', name: node.name }, write: true };
      case 'DeallocateStmt':
        return { plan: node.name ? { kind: 'session', op: 'deallocate', name: node.name } : { kind: 'session', op: 'deallocate' }, write: false };
      case 'ExplainStmt':
        return this.explain(node);
      case 'CopyStmt':
        return this.copy(node);
      case 'DeclareCursorStmt': {
        const inner = this.statement(node.query);
        if (inner.plan.kind === 'scatter-read' || inner.plan.kind === 'unsupported') {
          return { plan: inner.plan.kind === 'unsupported' ? inner.plan : unsupported(`cursor "${node.portalname}" would read several shards; a cursor must stay on one shard (add the shard key to its WHERE clause)`), write: false };
        }
        return { plan: { kind: 'cursor', op: 'declare', name: node.portalname, plan: inner.plan }, write: inner.write };
      }
      case 'FetchStmt':
        return { plan: { kind: 'cursor', op: node.ismove ? 'move' : 'fetch', name: node.portalname }, write: false };
      case 'ClosePortalStmt':
        return { plan: node.portalname ? { kind: 'cursor', op: 'close', name: node.portalname } : { kind: 'cursor', op: 'close' }, write: false };
      case 'CallStmt':
        return { plan: { kind: 'unsharded', tables: [] }, write: true };
      case 'TruncateStmt':
        return this.truncate(node);
      case 'CreateTableAsStmt': {
        const inner = this.statement(node.query);
        if (inner.plan.kind === 'unsupported') return inner;
        const src = 'tables' in inner.plan ? inner.plan.tables : 'table' in inner.plan ? [inner.plan.table] : [];
        if (inner.plan.kind === 'keyed' || inner.plan.kind === 'scatter-read' || inner.plan.kind === 'insert-rows') {
          return { plan: unsupported('CREATE TABLE … AS / SELECT INTO from a sharded table is not supported: create the table, then INSERT the rows by key or COPY them'), write: true };
        }
        const rel = node.into?.rel;
        return { plan: { kind: 'broadcast', reason: 'ddl', tables: uniq([...(rel ? [relationKey(rel.schemaname, rel.relname)] : []), ...src]), atomic: true }, write: true };
      }
      default:
        break;
    }
    if (UTILITY_NODES.has(type)) {
      const tables = this.mentionedTables(node);
      const all = tables.map((t) => this.classify(t.schema, t.relname));
      // Maintenance of tables that live only on shard 0 stays there; anything else (or the
      // whole database) runs everywhere.
      if (type !== 'DoStmt' && all.length > 0 && all.every((t) => t.cls === 'unsharded' || t.cls === 'system')) {
        return { plan: { kind: 'unsharded', tables: all.map((t) => t.name) }, write: true };
      }
      return { plan: { kind: 'broadcast', reason: 'utility', tables: all.map((t) => t.name) }, write: true };
    }
    if (DDL_NODES.has(type) || /^(Create|Alter|Drop|Define)/.test(type)) {
      return { plan: { kind: 'broadcast', reason: 'ddl', tables: uniq(this.mentionedTables(node).map((t) => relationKey(t.schema, t.relname))), atomic: ddlRunsInTransaction(type, node) }, write: true };
    }
    return { plan: { kind: 'broadcast', reason: 'utility', tables: [] }, write: true };
  }

  /** RangeVars anywhere under a node (DDL and utility statements: which tables they touch). */
  private mentionedTables(node: Node): { schema: string | undefined; relname: string }[] {
    const out: { schema: string | undefined; relname: string }[] = [];
    const walk = (n: Node): void => {
      if (n === null || typeof n !== 'object') return;
      if (Array.isArray(n)) {
        for (const x of n) walk(x);
        return;
      }
      for (const k of Object.keys(n)) {
        const v = n[k];
        if ((k === 'RangeVar' || k === 'relation') && v && typeof v === 'object' && typeof v.relname === 'string') {
          out.push({ schema: v.schemaname, relname: v.relname });
        } else {
          walk(v);
        }
      }
    };
    walk(node);
    return out;
  }

  private transaction(node: Node): StatementPlan {
    switch (node.kind) {
      case 'TRANS_STMT_BEGIN':
      case 'TRANS_STMT_START': return { kind: 'transaction', op: 'begin' };
      case 'TRANS_STMT_COMMIT': return { kind: 'transaction', op: 'commit' };
      case 'TRANS_STMT_ROLLBACK': return { kind: 'transaction', op: 'rollback' };
      case 'TRANS_STMT_SAVEPOINT': return { kind: 'transaction', op: 'savepoint', name: node.savepoint_name };
      case 'TRANS_STMT_RELEASE': return { kind: 'transaction', op: 'release', name: node.savepoint_name };
      case 'TRANS_STMT_ROLLBACK_TO': return { kind: 'transaction', op: 'rollback-to', name: node.savepoint_name };
      // The gid is a literal: read it from the literal list, it is not part of the cached plan.
      case 'TRANS_STMT_PREPARE': return { kind: 'transaction', op: 'prepare-transaction' };
      case 'TRANS_STMT_COMMIT_PREPARED': return { kind: 'transaction', op: 'commit-prepared' };
      case 'TRANS_STMT_ROLLBACK_PREPARED': return { kind: 'transaction', op: 'rollback-prepared' };
      default: return unsupported(`unknown transaction statement ${String(node.kind)}`, 'XX000');
    }
  }

  private variableSet(node: Node): StatementPlan {
    switch (node.kind) {
      case 'VAR_SET_MULTI':
        if (node.name === 'TRANSACTION') return { kind: 'transaction', op: 'set-transaction' };
        return { kind: 'session', op: 'set', name: String(node.name).toLowerCase() };
      case 'VAR_RESET':
        return { kind: 'session', op: 'reset', name: node.name };
      case 'VAR_RESET_ALL':
        return { kind: 'session', op: 'reset' };
      default:
        if (node.is_local) return { kind: 'transaction', op: 'set-local', name: node.name };
        return { kind: 'session', op: 'set', name: node.name };
    }
  }

  private explain(node: Node): StatementAnalysis {
    const inner = this.statement(node.query);
    const analyzeOpt = (node.options ?? []).some((o: Node) => o.DefElem?.defname === 'analyze' && o.DefElem.arg?.Boolean?.boolval !== false);
    if (inner.plan.kind === 'insert-rows') {
      return { plan: unsupported('EXPLAIN of a multi-row INSERT into a sharded table is not supported: explain one row'), write: false };
    }
    return { plan: inner.plan, write: analyzeOpt && inner.write };
  }

  private truncate(node: Node): StatementAnalysis {
    const all = (node.relations ?? []).map((r: Node) => this.classify(r.RangeVar?.schemaname, r.RangeVar?.relname));
    const tables = all.map((t: { name: string }) => t.name);
    if (all.some((t: { cls: TableClass }) => t.cls === 'sharded')) return { plan: { kind: 'broadcast', reason: 'write-without-key', tables }, write: true };
    if (all.some((t: { cls: TableClass }) => t.cls === 'reference')) return { plan: { kind: 'broadcast', reason: 'reference-write', tables }, write: true };
    return { plan: { kind: 'unsharded', tables }, write: true };
  }

  /**
   * `SELECT [pg_catalog.]set_config('name', 'value', is_local)` alone (pg_dump and pg_restore
   * send it for search_path): a SET in disguise, tracked like one so it is replayed on other
   * servers and never leaks into the pool. The name is a literal, so the plan is not cached.
   */
  private setConfig(node: Node): StatementAnalysis | null {
    if (node.fromClause || node.whereClause || node.targetList?.length !== 1) return null;
    const fn = node.targetList[0]?.ResTarget?.val?.FuncCall;
    const fname = fn ? names(fn.funcname) : [];
    if (fname[fname.length - 1] !== 'set_config' || (fname.length === 2 && fname[0] !== 'pg_catalog') || fn.args?.length !== 3) return null;
    const name = fn.args[0]?.A_Const?.sval?.sval;
    const local = fn.args[2]?.A_Const?.boolval;
    if (typeof name !== 'string' || local === undefined) return null;
    this.volatile = true;
    const setting = name.toLowerCase();
    if (local.boolval === true) return { plan: { kind: 'transaction', op: 'set-local', name: setting }, write: false };
    return { plan: { kind: 'session', op: 'set', name: setting }, write: false };
  }

  private copy(node: Node): StatementAnalysis {
    const direction = node.is_from ? 'from' : 'to';
    if (node.query) {
      const inner = this.statement(node.query);
      if (inner.plan.kind === 'unsupported') return inner;
      if (inner.plan.kind === 'keyed' && inner.write) {
        return { plan: unsupported('COPY (INSERT/UPDATE/DELETE … RETURNING) TO STDOUT is not supported through pgtide'), write: true };
      }
    }
    const rel = node.relation;
    const target = rel ? this.classify(rel.schemaname, rel.relname) : undefined;
    if (node.filename !== undefined || node.is_program) {
      if (target && target.cls !== 'unsharded' && target.cls !== 'system') {
        return { plan: unsupported(`COPY ${target.name} ${direction === 'from' ? 'FROM' : 'TO'} a server file or program is not supported for sharded and reference tables: use ${direction === 'from' ? 'STDIN' : 'STDOUT'}`), write: node.is_from === true };
      }
      return { plan: { kind: 'unsharded', tables: target ? [target.name] : [] }, write: node.is_from === true };
    }
    const options: Record<string, string | boolean> = {};
    let format: 'text' | 'csv' | 'binary' = 'text';
    for (const o of node.options ?? []) {
      const d = o.DefElem;
      if (!d) continue;
      const a = d.arg;
      let v: string | boolean;
      if (a === undefined) v = true;
      else if (a.Boolean) v = a.Boolean.boolval === true;
      else if (a.String) v = a.String.sval;
      else if (a.Integer) v = String(a.Integer.ival ?? 0);
      else if (a.Float) v = a.Float.fval;
      else if (a.A_Star) v = '*';
      else if (a.List) v = names(a.List.items).join(',');
      else v = true;
      // Postgres reads boolean options from words and numbers too (HEADER true, FREEZE 1).
      if ((d.defname === 'header' || d.defname === 'freeze') && typeof v === 'string') {
        const w = v.toLowerCase();
        if (w === 'true' || w === 'on' || w === '1') v = true;
        else if (w === 'false' || w === 'off' || w === '0') v = false;
      }
      options[d.defname] = v;
      if (d.defname === 'format' && (v === 'csv' || v === 'binary' || v === 'text')) format = v;
    }
    // Option values may come from string literals (DELIMITER ';'), which the shape drops.
    if (Object.keys(options).length > 0 && this.lexed.literals.length > 0) this.volatile = true;
    const plan: StatementPlan = { kind: 'copy', table: target?.name ?? '', direction, format, options };
    if (node.attlist) plan.columns = names(node.attlist);
    if (node.query) plan.query = this.statement(node.query).plan;
    return { plan, write: direction === 'from' };
  }

  // ---- DML ------------------------------------------------------------------------------

  private dml(type: string, node: Node): StatementAnalysis {
    const ctx: DmlContext = {
      occurrences: [],
      tables: new Map(),
      writtenClasses: new Set(),
      pins: new Map(),
      locking: false,
      insert: undefined,
      problems: [],
      updatesKey: [],
    };
    this.block(type, node, undefined, ctx, true);
    return this.decide(type, ctx);
  }

  /** Analyze one SELECT/INSERT/UPDATE/DELETE/MERGE block and, recursively, its sub-blocks. */
  private block(type: string, node: Node, parent: Block | undefined, ctx: DmlContext, top = false): void {
    const block: Block = { parent, occurrences: [], names: new Set() };
    const cteNames = new Set<string>();
    const withClause = node.withClause?.WithClause ?? node.withClause;
    // CTE names shadow tables in this statement (and a recursive CTE names itself): register
    // them before walking any body. Approximation: visible statement-wide, not per scope.
    for (const cte of withClause?.ctes ?? []) if (cte.CommonTableExpr) cteNames.add(cte.CommonTableExpr.ctename);
    for (const n of cteNames) ctx.tables.set(`cte:${n}`, { name: n, cls: 'system' });
    for (const cte of withClause?.ctes ?? []) {
      const c = cte.CommonTableExpr;
      if (!c) continue;
      const qt = Object.keys(c.ctequery)[0]!;
      if (qt !== 'SelectStmt') ctx.problems.push(`a data-modifying WITH (${qt.replace('Stmt', '').toUpperCase()} in a CTE) is not supported on sharded tables`);
      this.block(qt, c.ctequery[qt], parent, ctx, false);
    }

    const addRange = (rv: Node, written: boolean): Occurrence | undefined => {
      if (rv.schemaname === undefined && ctx.tables.has(`cte:${rv.relname}`)) {
        block.names.add(rv.alias?.aliasname ?? rv.relname);
        return undefined;
      }
      const c = this.classify(rv.schemaname, rv.relname);
      ctx.tables.set(c.name, c);
      if (written) ctx.writtenClasses.add(c.cls);
      const ref = rv.alias?.aliasname ?? rv.relname;
      block.names.add(ref);
      if (c.cls !== 'sharded' || !c.info) return undefined;
      const occ: Occurrence = { id: this.nextOcc++, name: c.name, info: c.info, ref, schema: rv.schemaname, relname: rv.relname, block };
      block.occurrences.push(occ);
      ctx.occurrences.push(occ);
      return occ;
    };

    const equalities: Node[] = [];
    const fromItem = (item: Node): void => {
      if (item.RangeVar) addRange(item.RangeVar, false);
      else if (item.JoinExpr) {
        fromItem(item.JoinExpr.larg);
        fromItem(item.JoinExpr.rarg);
        if (item.JoinExpr.quals) equalities.push(item.JoinExpr.quals);
        if (item.JoinExpr.usingClause) {
          // JOIN … USING (col): an equality on col between both sides.
          equalities.push({ __using: names(item.JoinExpr.usingClause) });
        }
        if (item.JoinExpr.alias) block.names.add(item.JoinExpr.alias.aliasname);
      } else if (item.RangeSubselect) {
        if (item.RangeSubselect.alias) block.names.add(item.RangeSubselect.alias.aliasname);
        this.block('SelectStmt', item.RangeSubselect.subquery.SelectStmt, block, ctx);
      } else {
        // RangeFunction and the like: walk for nested queries.
        this.nested(item, block, ctx);
      }
    };

    let where: Node;
    let target: Occurrence | undefined;
    let rest: Node[] = [];
    switch (type) {
      case 'SelectStmt':
        if (node.op && node.op !== 'SETOP_NONE') {
          if (node.larg) this.block('SelectStmt', node.larg, parent, ctx);
          if (node.rarg) this.block('SelectStmt', node.rarg, parent, ctx);
          rest = [node.sortClause, node.limitCount, node.limitOffset];
          break;
        }
        for (const f of node.fromClause ?? []) fromItem(f);
        if (node.lockingClause) {
          const strength = node.lockingClause.map((l: Node) => l.LockingClause?.strength);
          if (strength.some((s: string) => s === 'LCS_FORUPDATE' || s === 'LCS_FORNOKEYUPDATE' || s === 'LCS_FORSHARE' || s === 'LCS_FORKEYSHARE')) ctx.locking = true;
        }
        where = node.whereClause;
        rest = [node.targetList, node.groupClause, node.havingClause, node.sortClause, node.windowClause, node.distinctClause, node.limitCount, node.limitOffset];
        if (node.valuesLists) rest.push(node.valuesLists);
        break;
      case 'UpdateStmt':
        target = addRange(node.relation, true);
        if (top) ctx.target = target;
        for (const f of node.fromClause ?? []) fromItem(f);
        where = node.whereClause;
        rest = [node.targetList, node.returningList];
        if (target) {
          for (const t of node.targetList ?? []) {
            if (t.ResTarget?.name === target.info.keyColumn) ctx.updatesKey.push(target.name);
          }
        }
        break;
      case 'DeleteStmt':
        target = addRange(node.relation, true);
        if (top) ctx.target = target;
        for (const f of node.usingClause ?? []) fromItem(f);
        where = node.whereClause;
        rest = [node.returningList];
        break;
      case 'InsertStmt': {
        target = addRange(node.relation, true);
        const sel = node.selectStmt?.SelectStmt;
        if (target) {
          ctx.insert = { occ: target, cols: (node.cols ?? []).map((c: Node) => c.ResTarget?.name), values: sel?.valuesLists, select: sel && !sel.valuesLists ? sel : undefined };
          const oc = node.onConflictClause;
          for (const t of oc?.targetList ?? []) {
            if (t.ResTarget?.name === target.info.keyColumn) ctx.updatesKey.push(target.name);
          }
        }
        if (sel && !sel.valuesLists) this.block('SelectStmt', sel, block, ctx);
        else if (sel?.valuesLists) this.nested(sel.valuesLists, block, ctx);
        rest = [node.onConflictClause, node.returningList];
        break;
      }
      case 'MergeStmt': {
        target = addRange(node.relation, true);
        if (target) ctx.problems.push(`MERGE into sharded table ${target.name} is not supported: use INSERT … ON CONFLICT by key`);
        if (node.sourceRelation) fromItem(node.sourceRelation);
        if (node.joinCondition) equalities.push(node.joinCondition);
        rest = [node.mergeWhenClauses, node.returningList];
        break;
      }
      default:
        break;
    }

    // Key equalities join occurrences of this block (and of enclosing blocks: correlation).
    for (const e of [...equalities, where]) if (e) this.collectEqualities(e, block);
    if (where) {
      for (const occ of block.occurrences) {
        const keys = this.pins(where, occ, block);
        if (keys) ctx.pins.set(occ.id, keys);
      }
      this.nested(where, block, ctx);
    }
    for (const e of equalities) if (!e.__using) this.nested(e, block, ctx);
    for (const r of rest) if (r) this.nested(r, block, ctx);
  }

  /** Find sub-blocks (subqueries, data-modifying CTEs) anywhere under `n`. */
  private nested(n: Node, block: Block, ctx: DmlContext): void {
    if (n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) this.nested(x, block, ctx);
      return;
    }
    for (const k of Object.keys(n)) {
      const v = n[k];
      if (k === 'SelectStmt' || k === 'InsertStmt' || k === 'UpdateStmt' || k === 'DeleteStmt') {
        if (k !== 'SelectStmt') ctx.problems.push('a data-modifying statement nested in another is not supported on sharded tables');
        this.block(k, v, block, ctx);
      } else if (k === 'SubLink') {
        // `t.key IN (SELECT u.key …)`: a semijoin on the key is local to each shard.
        const sub = v.subselect?.SelectStmt;
        this.nested(v.testexpr, block, ctx);
        if (sub) {
          const before = ctx.occurrences.length;
          this.block('SelectStmt', sub, block, ctx);
          if (v.subLinkType === 'ANY_SUBLINK' && v.testexpr && sub.targetList?.length === 1) {
            const outer = this.columnOcc(v.testexpr, block);
            const innerBlock = ctx.occurrences[before]?.block;
            const inner = innerBlock ? this.columnOcc(sub.targetList[0].ResTarget?.val, innerBlock) : undefined;
            if (outer && inner && outer.info.keyspaceId === inner.info.keyspaceId) this.union(outer.id, inner.id);
          }
        }
      } else {
        this.nested(v, block, ctx);
      }
    }
  }

  /** The occurrence whose key column a ColumnRef names, resolved in this block then outwards. */
  private columnOcc(node: Node, block: Block): Occurrence | undefined {
    const fields = node?.ColumnRef?.fields;
    if (!fields) return undefined;
    const parts = names(fields);
    const col = parts[parts.length - 1]!;
    for (let b: Block | undefined = block; b; b = b.parent) {
      if (parts.length === 1) {
        const hits = b.occurrences.filter((o) => o.info.keyColumn === col);
        if (hits.length === 1) return hits[0];
        if (hits.length > 1) return undefined;
        continue;
      }
      const qual = parts[parts.length - 2]!;
      const schema = parts.length >= 3 ? parts[parts.length - 3] : undefined;
      const hit = b.occurrences.find((o) => o.ref === qual && (schema === undefined || o.schema === schema || (schema === 'public' && o.schema === undefined)));
      if (hit) return hit.info.keyColumn === col ? hit : undefined;
      // The qualifier names a non-sharded item of this block: it shadows outer names.
      if (b.names.has(qual)) return undefined;
    }
    return undefined;
  }

  /** Union occurrences equated on their keys in the AND-conjuncts of `expr`. */
  private collectEqualities(expr: Node, block: Block): void {
    if (expr.__using) {
      // USING (col): every sharded occurrence of this block keyed by col is equated.
      const cols: string[] = expr.__using;
      const occs = block.occurrences.filter((o) => o.info.keyColumn !== undefined && cols.includes(o.info.keyColumn));
      for (let i = 1; i < occs.length; i++) if (occs[i]!.info.keyspaceId === occs[0]!.info.keyspaceId) this.union(occs[0]!.id, occs[i]!.id);
      return;
    }
    const b = expr.BoolExpr;
    if (b?.boolop === 'AND_EXPR') {
      for (const a of b.args) this.collectEqualities(a, block);
      return;
    }
    const e = expr.A_Expr;
    if (e?.kind === 'AEXPR_OP' && names(e.name).join('.') === '=') {
      const l = this.columnOcc(e.lexpr, block);
      const r = this.columnOcc(e.rexpr, block);
      if (l && r && l !== r && l.info.keyspaceId === r.info.keyspaceId) this.union(l.id, r.id);
    }
  }

  /** Keys that pin `occ` in `expr` (a WHERE of its block), or undefined if it is not pinned. */
  private pins(expr: Node, occ: Occurrence, block: Block): KeyRef[] | undefined {
    const b = expr.BoolExpr;
    if (b?.boolop === 'AND_EXPR') {
      // Any pinned conjunct pins the whole AND (rows must satisfy it).
      for (const a of b.args) {
        const k = this.pins(a, occ, block);
        if (k) return k;
      }
      return undefined;
    }
    if (b?.boolop === 'OR_EXPR') {
      const all: KeyRef[] = [];
      for (const a of b.args) {
        const k = this.pins(a, occ, block);
        if (!k) return undefined;
        all.push(...k);
      }
      return all;
    }
    const e = expr.A_Expr;
    if (!e || names(e.name).join('.') !== '=') return undefined;
    const isKey = (n: Node): boolean => this.columnOcc(n, block) === occ;
    switch (e.kind) {
      case 'AEXPR_OP': {
        if (isKey(e.lexpr)) {
          const k = this.keyRef(e.rexpr);
          return k ? [k] : undefined;
        }
        if (isKey(e.rexpr)) {
          const k = this.keyRef(e.lexpr);
          return k ? [k] : undefined;
        }
        return undefined;
      }
      case 'AEXPR_IN': {
        if (!isKey(e.lexpr)) return undefined;
        const items: Node[] = e.rexpr?.List?.items ?? [];
        const out: KeyRef[] = [];
        for (const it of items) {
          const k = this.keyRef(it);
          if (!k) return undefined;
          out.push(k);
        }
        return out.length > 0 ? out : undefined;
      }
      case 'AEXPR_OP_ANY': {
        if (!isKey(e.lexpr)) return undefined;
        let r = e.rexpr;
        while (r?.TypeCast && !r.TypeCast.arg?.A_ArrayExpr) r = r.TypeCast.arg;
        if (r?.TypeCast) r = r.TypeCast.arg;
        if (r?.A_ArrayExpr) {
          const out: KeyRef[] = [];
          for (const it of r.A_ArrayExpr.elements ?? []) {
            const k = this.keyRef(it);
            if (!k) return undefined;
            out.push(k);
          }
          return out.length > 0 ? out : undefined;
        }
        const k = this.keyRef(e.rexpr, true);
        return k ? [k] : undefined;
      }
      default:
        return undefined;
    }
  }

  /** Turn what the blocks found into one plan (see the header for the rules). */
  private decide(type: string, ctx: DmlContext): StatementAnalysis {
    const byClass = (cls: TableClass): string[] => uniq([...ctx.tables.values()].filter((t) => t.cls === cls && !t.name.startsWith('cte:')).map((t) => t.name));
    const sharded = byClass('sharded');
    const reference = byClass('reference');
    const plain = byClass('unsharded').filter((n) => !ctx.tables.has(`cte:${n}`));
    const writes = type !== 'SelectStmt' || ctx.writtenClasses.size > 0 || ctx.locking;
    const writesData = type !== 'SelectStmt' || ctx.writtenClasses.size > 0;

    if (ctx.problems.length > 0 && sharded.length > 0) return { plan: unsupported(ctx.problems[0]!), write: writes };

    if (sharded.length === 0) {
      if (ctx.writtenClasses.has('reference')) {
        if (plain.length > 0) {
          return { plan: unsupported(`writing reference table ${reference[0]} from table ${plain[0]}, which lives on one shard only, is not supported; make ${plain[0]} a reference table`), write: true };
        }
        return { plan: { kind: 'broadcast', reason: 'reference-write', tables: reference }, write: true };
      }
      if (plain.length > 0 || writesData) return { plan: { kind: 'unsharded', tables: [...plain, ...reference] }, write: writes };
      if (reference.length > 0) return { plan: { kind: 'reference-read', tables: reference }, write: writes };
      return { plan: { kind: 'unsharded', tables: [] }, write: writes };
    }

    if (plain.length > 0) {
      return { plan: unsupported(`cross-shard join: sharded table ${sharded[0]} with table ${plain[0]}, which is neither sharded nor a reference table (it lives on one shard); make ${plain[0]} a reference table or shard it`), write: writes };
    }
    if (ctx.writtenClasses.has('reference') || ctx.writtenClasses.has('unsharded')) {
      return { plan: unsupported(`writing a reference or unsharded table from sharded table ${sharded[0]} is not supported: its rows are spread over several shards`), write: true };
    }
    if (ctx.updatesKey.length > 0) {
      return { plan: unsupported(`updating the shard key of ${ctx.updatesKey[0]} is not supported: the row would have to move to another shard (DELETE and INSERT it instead)`), write: true };
    }

    if (ctx.insert) return { plan: this.insertPlan(ctx), write: true };

    // Group the occurrences; each group needs its own pin.
    const groups = new Map<number, Occurrence[]>();
    for (const o of ctx.occurrences) {
      const r = this.find(o.id);
      let g = groups.get(r);
      if (!g) groups.set(r, (g = []));
      g.push(o);
    }
    const pinned: { keys: KeyRef[]; table: string }[] = [];
    let unpinned = 0;
    for (const g of groups.values()) {
      const o = g.find((x) => ctx.pins.has(x.id));
      if (o) pinned.push({ keys: ctx.pins.get(o.id)!, table: o.name });
      else unpinned++;
    }
    const table = ctx.target?.name ?? pinned[0]?.table ?? sharded[0]!;
    if (groups.size === 1) {
      if (pinned.length === 1) return { plan: { kind: 'keyed', table, write: writes, keys: pinned[0]!.keys }, write: writes };
      if (writesData) return { plan: { kind: 'broadcast', reason: 'write-without-key', tables: sharded }, write: true };
      return { plan: { kind: 'scatter-read', tables: sharded }, write: writes };
    }
    if (unpinned === 0 && pinned.every((p) => p.keys.length === 1 && !('array' in p.keys[0]!))) {
      // Deduplicate identical refs ($1 used twice) so a single key needs no cross-check.
      const seen = new Set<string>();
      const keys = pinned.map((p) => p.keys[0]!).filter((k) => {
        const s = JSON.stringify(k);
        if (seen.has(s)) return false;
        seen.add(s);
        return true;
      });
      const plan: StatementPlan = { kind: 'keyed', table, write: writes, keys };
      if (keys.length > 1) plan.sameShard = true;
      return { plan, write: writes };
    }
    return {
      plan: unsupported(`cross-shard join: the query combines ${sharded.length > 1 ? `sharded tables ${sharded.join(', ')}` : `several scans of sharded table ${sharded[0]}`} without joining them on their shard keys or pinning each to one key, so it would need rows from several shards`),
      write: writes,
    };
  }

  private insertPlan(ctx: DmlContext): StatementPlan {
    const ins = ctx.insert!;
    const info = ins.occ.info;
    if (ctx.occurrences.length > 1) {
      return unsupported(`INSERT into sharded table ${ins.occ.name} that reads sharded tables is not supported: the rows would come from several shards`);
    }
    if (ins.select) {
      // Every shard runs the query and keeps the rows it owns: the query must give every shard the
      // same keys, so nothing volatile may decide them.
      if (ins.cols.length === 0) {
        return unsupported(`INSERT … SELECT into sharded table ${ins.occ.name} must name its columns (INSERT INTO ${ins.occ.name} (${info.keyColumn}, …) SELECT …) so that pgtide can find the shard key ${info.keyColumn}`);
      }
      const keyPosition = ins.cols.indexOf(info.keyColumn!);
      if (keyPosition < 0) return unsupported(`INSERT … SELECT into sharded table ${ins.occ.name} must give the shard key column ${info.keyColumn}`);
      const volatile = volatileCall(ins.select);
      if (volatile) {
        return unsupported(`INSERT … SELECT into sharded table ${ins.occ.name} calls ${volatile}(), which would give each shard different rows: every shard runs the query and keeps the rows whose key it owns; compute the values first, or insert them with VALUES or COPY`);
      }
      return { kind: 'insert-select', table: ins.occ.name, keyPosition };
    }
    if (ins.cols.length === 0) {
      return unsupported(`INSERT into sharded table ${ins.occ.name} must name its columns (INSERT INTO ${ins.occ.name} (${info.keyColumn}, …) VALUES …) so that pgtide can find the shard key ${info.keyColumn}`);
    }
    const pos = ins.cols.indexOf(info.keyColumn!);
    if (pos < 0) {
      return unsupported(`INSERT into sharded table ${ins.occ.name} must give the shard key column ${info.keyColumn}`);
    }
    const rows: Node[] = ins.values ?? [];
    if (rows.length === 0) return unsupported(`INSERT into sharded table ${ins.occ.name} needs VALUES rows`);
    const keys: KeyRef[] = [];
    for (let r = 0; r < rows.length; r++) {
      const item = rows[r].List?.items?.[pos];
      const k = item ? this.keyRef(item) : undefined;
      if (!k) {
        return unsupported(`the shard key ${info.keyColumn} of row ${r + 1} of INSERT into ${ins.occ.name} must be a constant or a parameter`);
      }
      keys.push(k);
    }
    if (keys.length === 1) return { kind: 'keyed', table: ins.occ.name, write: true, keys };
    return { kind: 'insert-rows', table: ins.occ.name, keys, rowSpans: [], head: [0, 0], tail: [0, 0] };
  }
}

interface DmlContext {
  occurrences: Occurrence[];
  tables: Map<string, { name: string; cls: TableClass; info?: TableInfo }>;
  writtenClasses: Set<TableClass>;
  pins: Map<number, KeyRef[]>;
  locking: boolean;
  insert: { occ: Occurrence; cols: string[]; values: Node[] | undefined; select: Node | undefined } | undefined;
  problems: string[];
  updatesKey: string[];
  /** The sharded table an UPDATE/DELETE at the top level writes. */
  target?: Occurrence;
}

/**
 * Functions whose result differs between two runs of the same query (Postgres's volatile ones
 * that people use to make rows): each shard would see different keys or a different row set.
 */
const VOLATILE_FUNCTIONS = new Set(['random', 'random_normal', 'setseed', 'nextval', 'setval', 'currval', 'lastval', 'gen_random_uuid', 'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v4', 'clock_timestamp', 'timeofday', 'txid_current', 'pg_current_xact_id']);

/** The first volatile function called anywhere in `node`, or null. */
function volatileCall(node: unknown): string | null {
  if (Array.isArray(node)) {
    for (const n of node) {
      const v = volatileCall(n);
      if (v) return v;
    }
    return null;
  }
  if (node === null || typeof node !== 'object') return null;
  const fc = (node as Node).FuncCall;
  if (fc) {
    const fname = names(fc.funcname);
    const last = fname[fname.length - 1];
    if (last && VOLATILE_FUNCTIONS.has(last)) return last;
  }
  for (const v of Object.values(node as Record<string, unknown>)) {
    const found = volatileCall(v);
    if (found) return found;
  }
  return null;
}
