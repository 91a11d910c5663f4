// The statement router: lexer shape → LRU cache of route plans; libpg-query only on a miss.
import { loadModule, parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { StatementAnalyzer } from './analyze.js';
import { findValuesRows, lex, type LexResult } from './lexer.js';
import type { Analysis, AnalyzeResult, SchemaView, StatementPlan } from './types.js';

/** Plans kept by default: distinct statement shapes an application sends are usually few. */
const DEFAULT_CACHE_SIZE = 10_000;

interface CacheEntry {
  /** Returned as is on a hit; never mutated. */
  analysis: Analysis;
  /** Some plan is insert-rows: its spans are recomputed from this execution's text. */
  hasInsertRows: boolean;
}

let loaded = false;

export class Router {
  private readonly cache: LRUCache<string, CacheEntry>;

  constructor(
    private readonly schema: () => SchemaView,
    opts: { cacheSize?: number } = {},
  ) {
    this.cache = new LRUCache({ max: opts.cacheSize ?? DEFAULT_CACHE_SIZE });
  }

  /** Load libpg-query's WASM module; once per process, before the first analyze(). */
  static async init(): Promise<void> {
    if (loaded) return;
    await loadModule();
    loaded = true;
  }

  /** Plans for every statement of `sql`. On a cache hit only the lexer runs. */
  analyze(sql: string): AnalyzeResult {
    const lexed = lex(sql);
    const hit = this.cache.get(lexed.shape);
    if (hit) {
      const analysis = hit.hasInsertRows ? withRowSpans(hit.analysis, sql, lexed.statements) : hit.analysis;
      return { analysis, literals: lexed.literals, shape: lexed.shape, spans: lexed.statements };
    }
    return this.miss(sql, lexed);
  }

  /** Drop every cached plan: the set of sharded/reference tables changed. */
  invalidate(): void {
    this.cache.clear();
  }

  /** Cached shapes (for SHOW STATS-like introspection and tests). */
  get size(): number {
    return this.cache.size;
  }

  private miss(sql: string, lexed: LexResult): AnalyzeResult {
    if (!loaded) throw new Error('Router.init() must complete before analyze()');
    let parsed;
    try {
      parsed = parseSync(sql);
    } catch (e) {
      // Postgres parses the whole string before running any of it, so one error fails all.
      const details = (e as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
      const plan: StatementPlan = { kind: 'unsupported', sqlstate: '42601', message: (e as Error).message };
      if (details?.cursorPosition !== undefined) plan.position = charPosition(sql, details.cursorPosition) + 1;
      return { analysis: { plans: [plan], statements: 1, readOnly: true, cached: false }, literals: lexed.literals, shape: lexed.shape, spans: lexed.statements };
    }
    const analyzer = new StatementAnalyzer(this.schema(), sql, lexed);
    const result = analyzer.analyzeAll(parsed);
    const plans = result.statements.map((s) => s.plan);
    const readOnly = result.statements.every((s) => !s.write);
    // The lexer splits on top-level ';' only; a body like BEGIN ATOMIC … END has inner ones.
    // Then trust the parser's spans and keep the plan out of the cache.
    const spansAgree = lexed.statements.length === plans.length;
    const spans = spansAgree ? lexed.statements : result.parserSpans;
    const hasInsertRows = plans.some((p) => p.kind === 'insert-rows');
    const fresh: Analysis = { plans, statements: plans.length, readOnly, cached: false };
    if (!result.volatile && spansAgree) {
      this.cache.set(lexed.shape, { analysis: { plans, statements: plans.length, readOnly, cached: true }, hasInsertRows });
    }
    const analysis = hasInsertRows ? withRowSpans(fresh, sql, spans) : fresh;
    return { analysis, literals: lexed.literals, shape: lexed.shape, spans };
  }
}

/** Copy of `analysis` whose insert-rows plans carry the row spans of this execution's text. */
function withRowSpans(analysis: Analysis, sql: string, spans: [number, number][]): Analysis {
  const plans = analysis.plans.map((p, i) => {
    if (p.kind !== 'insert-rows') return p;
    const [start, end] = spans[i] ?? [0, sql.length];
    const rows = findValuesRows(sql, start, end);
    if (rows.length !== p.keys.length) {
      return { kind: 'unsupported', sqlstate: 'XX000', message: `pgtide found ${rows.length} VALUES rows where the parser saw ${p.keys.length}` } as StatementPlan;
    }
    return { ...p, rowSpans: rows, head: [start, rows[0]![0]] as [number, number], tail: [rows[rows.length - 1]![1], end] as [number, number] };
  });
  return { ...analysis, plans };
}

/** Char index of a UTF-8 byte offset. */
function charPosition(sql: string, byteOffset: number): number {
  let bytes = 0;
  for (let i = 0; i < sql.length; i++) {
    if (bytes >= byteOffset) return i;
    const c = sql.codePointAt(i)!;
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (c >= 0x10000) i++;
  }
  return sql.length;
}
