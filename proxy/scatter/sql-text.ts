// Text surgery for the scatter planner: a small top-level tokenizer that finds clause and item spans of one SELECT.
//
// libpg-query gives the AST with the *start* offset (in UTF-8 bytes) of most nodes but no end
// offsets and no deparser. The planner decides from the AST and rewrites the text: it needs the
// span of each select-list item, of each clause (FROM…WHERE, GROUP BY, HAVING, ORDER BY, LIMIT,
// OFFSET) and of each ORDER BY / GROUP BY item. This tokenizer skips strings, quoted
// identifiers, dollar quotes and comments, tracks parenthesis depth and reports the depth-0
// keywords and commas. The planner cross-checks its spans with the AST's start offsets and
// refuses the query when they disagree, so a tokenizer blind spot yields 0A000, never a bad rewrite.

export interface Tok {
  /** Lower-cased word, or the punctuation char ('(', ')', ',', ';'); 'other' for the rest. */
  text: string;
  start: number;
  end: number;
  depth: number;
}

function isIdent(ch: string): boolean {
  return /[A-Za-z0-9_$\u0080-\uffff]/.test(ch);
}

/** Tokens of `sql` at every depth (words, parentheses, commas); literals and operators as 'other'. */
export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      let nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') { nest++; i += 2; } else if (sql[i] === '*' && sql[i + 1] === '/') { nest--; i += 2; } else i++;
      }
      continue;
    }
    const start = i;
    if (c === "'" || ((c === 'E' || c === 'e' || c === 'B' || c === 'b' || c === 'X' || c === 'x' || c === 'N' || c === 'n') && sql[i + 1] === "'")) {
      const escapes = c === 'E' || c === 'e';
      i = c === "'" ? i + 1 : i + 2;
      for (;;) {
        if (i >= n) break;
        if (escapes && sql[i] === '\\') { i += 2; continue; }
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") { i += 2; continue; }
          i++;
          break;
        }
        i++;
      }
      out.push({ text: 'other', start, end: i, depth });
      continue;
    }
    if (c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === '"') {
          if (sql[i + 1] === '"') { i += 2; continue; }
          i++;
          break;
        }
        i++;
      }
      out.push({ text: 'ident', start, end: i, depth });
      continue;
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const close = sql.indexOf(m[0], i + m[0].length);
        i = close < 0 ? n : close + m[0].length;
        out.push({ text: 'other', start, end: i, depth });
        continue;
      }
      i++;
      while (i < n && /[0-9]/.test(sql[i]!)) i++;
      out.push({ text: 'other', start, end: i, depth });
      continue;
    }
    if (c === '(' || c === '[') {
      out.push({ text: '(', start, end: i + 1, depth });
      depth++;
      i++;
      continue;
    }
    if (c === ')' || c === ']') {
      depth--;
      out.push({ text: ')', start, end: i + 1, depth });
      i++;
      continue;
    }
    if (c === ',' || c === ';') {
      out.push({ text: c, start, end: i + 1, depth });
      i++;
      continue;
    }
    if (isIdent(c)) {
      while (i < n && isIdent(sql[i]!)) i++;
      // A number like 1.5e3 continues past the dot; a qualified name a.b is two words.
      out.push({ text: sql.slice(start, i).toLowerCase(), start, end: i, depth });
      continue;
    }
    i++;
    while (i < n && /[+\-*/<>=~!@#%^&|`?.:]/.test(sql[i]!) && !(sql[i] === '-' && sql[i + 1] === '-') && !(sql[i] === '/' && sql[i + 1] === '*')) i++;
    out.push({ text: c === '.' && i === start + 1 ? '.' : 'other', start, end: i, depth });
  }
  return out;
}

const CLAUSE_WORDS = new Set(['select', 'from', 'where', 'group', 'having', 'window', 'order', 'limit', 'offset', 'fetch', 'for', 'union', 'intersect', 'except', 'into']);

export interface Clause {
  word: string;
  start: number;
  end: number;
  /** Where the clause's content starts (after `GROUP BY`, `ORDER BY`, …). */
  bodyStart: number;
}

/** Depth-0 clauses of a single SELECT, in text order (the first is SELECT itself). */
export function clauses(sql: string, toks: Tok[]): Clause[] {
  const out: Clause[] = [];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.depth !== 0 || !CLAUSE_WORDS.has(t.text)) continue;
    const prev = toks[k - 1];
    // `a IS [NOT] DISTINCT FROM b` and `WITHIN GROUP (…)` are not clauses.
    if (t.text === 'from' && prev?.text === 'distinct' && (toks[k - 2]?.text === 'is' || toks[k - 2]?.text === 'not')) continue;
    if (t.text === 'group' && prev?.text === 'within') continue;
    // `FOR` only starts a locking clause (FOR UPDATE/SHARE/NO KEY/KEY).
    if (t.text === 'for' && !['update', 'share', 'no', 'key'].includes(toks[k + 1]?.text ?? '')) continue;
    let bodyStart = t.end;
    if ((t.text === 'group' || t.text === 'order') && toks[k + 1]?.text === 'by') bodyStart = toks[k + 1]!.end;
    if (out.length > 0) out[out.length - 1]!.end = t.start;
    out.push({ word: t.text, start: t.start, end: sql.length, bodyStart });
  }
  return out;
}

/** Split [start, end) at depth-0 commas (depth relative to the tokens' depth 0). */
export function splitItems(toks: Tok[], start: number, end: number, baseDepth = 0): [number, number][] {
  const out: [number, number][] = [];
  let s = -1;
  let last = -1;
  for (const t of toks) {
    if (t.start < start || t.end > end) continue;
    if (t.depth === baseDepth && t.text === ',') {
      if (s >= 0) out.push([s, last]);
      s = -1;
      continue;
    }
    if (s < 0) s = t.start;
    last = t.end;
  }
  if (s >= 0) out.push([s, last]);
  return out;
}

/** From the '(' of a call starting at `start`: [argsStart, argsEnd, callEnd) (callEnd past ')'). */
export function callSpan(toks: Tok[], start: number): { argsStart: number; argsEnd: number; end: number } | null {
  let k = toks.findIndex((t) => t.start >= start);
  if (k < 0) return null;
  while (k < toks.length && toks[k]!.text !== '(') k++;
  const open = toks[k];
  if (!open) return null;
  for (let j = k + 1; j < toks.length; j++) {
    const t = toks[j]!;
    if (t.text === ')' && t.depth === open.depth) return { argsStart: open.end, argsEnd: t.start, end: t.end };
  }
  return null;
}

/** The end of the last token inside [start, end), dropping trailing words in `drop` (ASC, DESC, NULLS…). */
export function trimTrailingWords(toks: Tok[], start: number, end: number, drop: Set<string>): number {
  const inside = toks.filter((t) => t.start >= start && t.end <= end);
  let k = inside.length - 1;
  while (k > 0 && drop.has(inside[k]!.text) && inside[k]!.depth === inside[0]!.depth) k--;
  return inside[k]?.end ?? end;
}

/** Char offset of a UTF-8 byte offset (libpg-query locations are bytes). */
export function byteToChar(sql: string): (b: number) => number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(sql)) return (b) => b;
  const map: number[] = [];
  for (let i = 0; i < sql.length; i++) {
    const c = sql.codePointAt(i)!;
    const len = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (let j = 0; j < len; j++) map.push(i);
    if (c >= 0x10000) i++;
  }
  return (b) => (b >= map.length ? sql.length : map[b]!);
}

/** A Postgres identifier, quoted (safe for any name). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
