// Stray-row filter: the SQL one shard runs in a fan-out, rewritten so that it sees only the rows it owns.
//
// A live move puts a range's rows on two shards at once: the target holds the copy from the start
// of the copy, and the source keeps its rows after the switch until cleanup deletes them. A
// statement that runs on every shard (scatter read, write without a key, IN list over several
// shards) would count those rows twice. The routing table lists, per shard, the ranges it may
// hold without owning (RoutingIndex.strayRanges); only for such a shard, each reference to a
// sharded table of the affected key space is narrowed to the rows outside those ranges:
//
//   FROM accounts a            → FROM (SELECT * FROM accounts WHERE NOT COALESCE(<in range>, false)) a
//   UPDATE accounts SET … WHERE c [RETURNING …]
//                              → UPDATE accounts SET … WHERE (c) AND NOT COALESCE(<in range>, false) [RETURNING …]
//   COPY accounts (a, b) TO STDOUT → COPY (SELECT a, b FROM accounts WHERE …) TO STDOUT
//
// <in range> is `hash(key) >= lo AND hash(key) < hi` with Postgres's own hash (the partition
// hash), so the shard decides itself; a NULL key (no owner) is kept. Other shards, and every shard
// while no move runs, get the text unchanged: the common case costs one Map lookup.
//
// The text is parsed again here (not taken from the router's cached plan): plans are cached by
// shape, while the edits need this text's own offsets. Rewrites are cached per routing version.
// A reference the rewrite cannot place safely (the name in the text does not match the parse)
// fails the statement with 0A000 rather than letting duplicates through.
import { parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import type { HashRange } from '../../config/routing.js';
import { relationKey } from '../../config/routing.js';
import type { KeyType, TableInfo } from '../../config/types.js';
import { anyRangeSql, hashSql } from '../../config/hash-sql.js';
import { byteToChar, quoteIdent, tokenize, type Tok } from './sql-text.js';
import { ScatterError } from './values.js';

// libpg-query returns untyped JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Node = any;

/** What the filter needs from the routing table (RoutingIndex satisfies it). */
export interface StrayView {
  readonly version: number;
  table(name: string): TableInfo | undefined;
  strayRanges(shardId: number): ReadonlyMap<number, readonly HashRange[]> | null;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** `NOT COALESCE(<hash in any range>, false)`: true for rows outside every range (and NULL keys). */
export function outsideRanges(info: TableInfo, col: string, ranges: readonly HashRange[]): string {
  return `NOT COALESCE(${anyRangeSql(hashSql(info.keyType!, col), ranges)}, false)`;
}

/** Identifier as Postgres folds it: unquoted → ASCII lower case, quoted → as written. */
function identAt(sql: string, tok: Tok): string {
  const raw = sql.slice(tok.start, tok.end);
  if (raw.startsWith('"')) return raw.slice(1, -1).replaceAll('""', '"');
  return raw.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * The rewriting of one statement text for one shard. Throws ScatterError (0A000) when a
 * reference cannot be rewritten safely.
 */
export function filterStrays(sql: string, view: StrayView, shardId: number): string {
  const ranges = view.strayRanges(shardId);
  if (!ranges) return sql;
  const parsed = parseSync(sql);
  const toChar = byteToChar(sql);
  let toks: Tok[] | null = null;
  const tokens = (): Tok[] => (toks ??= tokenize(sql));
  const edits: Edit[] = [];

  const strayInfo = (rv: Node, ctes: Set<string>): { info: TableInfo; ranges: readonly HashRange[] } | null => {
    if (!rv?.relname) return null;
    if (!rv.schemaname && ctes.has(rv.relname)) return null;
    const info = view.table(relationKey(rv.schemaname, rv.relname));
    if (!info || info.kind !== 'sharded' || info.keyspaceId === undefined || !info.keyColumn || !info.keyType) return null;
    const r = ranges.get(info.keyspaceId);
    return r && r.length > 0 ? { info, ranges: r } : null;
  };

  /** [start, end) of the (possibly qualified) name at a RangeVar's location, checked against the parse. */
  const nameSpan = (rv: Node): { start: number; end: number; only: number | null } => {
    const at = toChar(rv.location ?? -1);
    const all = tokens();
    const k = all.findIndex((t) => t.start === at);
    const parts: string[] = [];
    let j = k;
    let end = at;
    if (k >= 0) {
      for (;;) {
        const t = all[j];
        if (!t || !(t.text === 'ident' || /^[a-z_\u0080-\uffff]/.test(t.text))) break;
        parts.push(identAt(sql, t));
        end = t.end;
        if (all[j + 1]?.text !== '.') break;
        j += 2;
      }
    }
    const want = rv.schemaname ? [rv.schemaname, rv.relname] : [rv.relname];
    if (rv.catalogname) want.unshift(rv.catalogname);
    if (k < 0 || parts.join('.') !== want.join('.')) {
      throw new ScatterError('STRAY_FILTER', `pgtide cannot narrow table ${rv.relname} to the rows this shard owns while a move is under way (the statement text did not match its parse)`, { sqlstate: '0A000' });
    }
    const prev = all[k - 1];
    const only = rv.inh !== true && prev?.text === 'only' ? prev.start : null;
    return { start: only ?? at, end, only };
  };

  /** FROM/JOIN/USING reference → a filtered subquery that keeps the reference's name or alias. */
  const readRef = (rv: Node, ctes: Set<string>): void => {
    const s = strayInfo(rv, ctes);
    if (!s) return;
    const span = nameSpan(rv);
    const name = sql.slice(span.start, span.end);
    const sub = `(SELECT * FROM ${name} WHERE ${outsideRanges(s.info, quoteIdent(s.info.keyColumn!), s.ranges)})`;
    edits.push({ start: span.start, end: span.end, text: rv.alias ? sub : `${sub} AS ${quoteIdent(rv.relname)}` });
  };

  const depthAt = (pos: number): number => tokens().find((t) => t.start === pos)?.depth ?? 0;

  /** UPDATE/DELETE target: the filter joins the statement's top-level WHERE (a target cannot be a subquery). */
  const writeTarget = (rv: Node, ctes: Set<string>, stmtEnd: number): void => {
    const s = strayInfo(rv, ctes);
    if (!s) return;
    const span = nameSpan(rv);
    const ref = quoteIdent(rv.alias?.aliasname ?? rv.relname);
    const cond = outsideRanges(s.info, `${ref}.${quoteIdent(s.info.keyColumn!)}`, s.ranges);
    const top = tokens().filter((t) => t.start >= span.end && t.end <= stmtEnd && t.depth === depthAt(span.start));
    const where = top.find((t) => t.text === 'where');
    const returning = top.find((t) => t.text === 'returning');
    const last = [...top].reverse().find((t) => t.text !== ';');
    const tail = returning ? returning.start : (last?.end ?? stmtEnd);
    if (where) {
      const next = top[top.indexOf(where) + 1];
      if (next?.text === 'current') throw new ScatterError('STRAY_FILTER', 'WHERE CURRENT OF cannot be narrowed to the rows a shard owns while a move is under way', { sqlstate: '0A000' });
      edits.push({ start: where.end, end: where.end, text: ' (' });
      edits.push({ start: tail, end: tail, text: `) AND ${cond}${returning ? ' ' : ''}` });
    } else {
      edits.push({ start: tail, end: tail, text: `${returning ? '' : ' '}WHERE ${cond}${returning ? ' ' : ''}` });
    }
  };

  /** COPY t [(cols)] TO STDOUT → COPY (SELECT cols FROM t WHERE …) TO STDOUT. */
  const copyOut = (node: Node, ctes: Set<string>): void => {
    const rv = node.relation;
    const s = strayInfo(rv, ctes);
    if (!s) return;
    const span = nameSpan(rv);
    let end = span.end;
    let cols = '*';
    const all = tokens();
    const k = all.findIndex((t) => t.start >= span.end);
    if (node.attlist && all[k]?.text === '(') {
      const close = all.slice(k + 1).find((t) => t.text === ')' && t.depth === all[k]!.depth);
      if (!close) throw new ScatterError('STRAY_FILTER', 'pgtide cannot narrow this COPY to the rows a shard owns while a move is under way', { sqlstate: '0A000' });
      cols = sql.slice(all[k]!.end, close.start);
      end = close.end;
    }
    const name = sql.slice(span.start, span.end);
    edits.push({ start: span.start, end, text: `(SELECT ${cols} FROM ${name} WHERE ${outsideRanges(s.info, quoteIdent(s.info.keyColumn!), s.ranges)})` });
  };

  /** Every FROM-side RangeVar under `n` (not SELECT INTO targets, FOR UPDATE OF names, INSERT targets). */
  const walk = (n: Node, ctes: Set<string>): void => {
    if (n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) walk(x, ctes);
      return;
    }
    for (const key of Object.keys(n)) {
      const v = n[key];
      if (key === 'intoClause' || key === 'lockedRels') continue;
      if (key === 'RangeVar') {
        readRef(v, ctes);
        continue;
      }
      if (key === 'InsertStmt') {
        // Its target is written by key (split per shard); only what it reads is narrowed.
        const { relation: _r, ...rest } = v;
        walk(rest, ctes);
        continue;
      }
      walk(v, ctes);
    }
  };

  for (const raw of parsed.stmts ?? []) {
    const stmt = raw.stmt;
    const startB = raw.stmt_location ?? 0;
    const stmtEnd = raw.stmt_len ? toChar(startB + raw.stmt_len) : sql.length;
    const ctes = new Set<string>();
    collectCtes(stmt, ctes);
    const type = Object.keys(stmt ?? {})[0];
    const node = type ? stmt[type] : undefined;
    if (type === 'UpdateStmt' || type === 'DeleteStmt') {
      writeTarget(node.relation, ctes, stmtEnd);
      const { relation: _r, ...rest } = node;
      walk(rest, ctes);
    } else if (type === 'SelectStmt') {
      walk(node, ctes);
    } else if (type === 'CopyStmt' && !node.is_from && node.filename === undefined && !node.is_program) {
      if (node.query) walk(node.query, ctes);
      else copyOut(node, ctes);
    } else if (type === 'ExplainStmt') {
      // EXPLAIN ANALYZE of a fan-out counts rows like the statement would.
      walk(node.query, ctes);
    }
  }
  if (edits.length === 0) return sql;
  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  let out = '';
  let at = 0;
  for (const e of edits) {
    if (e.start < at) throw new ScatterError('STRAY_FILTER', 'pgtide cannot narrow this statement to the rows a shard owns while a move is under way (overlapping references)', { sqlstate: '0A000' });
    out += sql.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + sql.slice(at);
}

/** Names of every CTE in the statement: they shadow tables (an approximation, as in the router). */
function collectCtes(n: Node, out: Set<string>): void {
  if (n === null || typeof n !== 'object') return;
  if (Array.isArray(n)) {
    for (const x of n) collectCtes(x, out);
    return;
  }
  if (n.CommonTableExpr?.ctename) out.add(n.CommonTableExpr.ctename);
  for (const k of Object.keys(n)) collectCtes(n[k], out);
}

/** Rewrites per (shard, text), cleared when the routing version changes (the ranges do). */
export class StrayFilterCache {
  private readonly cache = new LRUCache<string, { sql: string } | { error: unknown }>({ max: 1000 });
  private version = -1;

  /** The text `shardId` runs; `sql` itself when the shard holds no strays. Throws refusals. */
  forShard(sql: string, view: StrayView, shardId: number): string {
    if (view.strayRanges(shardId) === null) return sql;
    if (view.version !== this.version) {
      this.cache.clear();
      this.version = view.version;
    }
    const key = `${shardId}\u0000${sql}`;
    let hit = this.cache.get(key);
    if (!hit) {
      try {
        hit = { sql: filterStrays(sql, view, shardId) };
      } catch (error) {
        hit = { error };
      }
      this.cache.set(key, hit);
    }
    if ('error' in hit) throw hit.error;
    return hit.sql;
  }
}
