// `$n` parameter references in SQL text, found the way Postgres's scanner would (never inside a
// string, a quoted identifier, a comment or a dollar-quoted body), and renumbered.
//
// Used to split a multi-row INSERT with parameters per shard: each shard's statement keeps only
// its rows, so its parameters are renumbered 1..k in order of first appearance.

export interface ParamRef {
  /** offset of the '$' */
  start: number;
  /** offset just past the last digit */
  end: number;
  n: number;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}

function isIdentChar(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 36;
}

/** Every `$n` of `sql` in text order. */
export function paramRefs(sql: string): ParamRef[] {
  const out: ParamRef[] = [];
  const len = sql.length;
  let i = 0;
  while (i < len) {
    const c = sql.charCodeAt(i);
    if (c === 39 /* ' */) {
      // E'…' (or e'…') takes backslash escapes; a plain '…' does not (standard_conforming_strings).
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      const escapes = (prev === 69 || prev === 101) && (i < 2 || !isIdentChar(sql.charCodeAt(i - 2)));
      i++;
      while (i < len) {
        const d = sql.charCodeAt(i);
        if (escapes && d === 92 /* \ */) i += 2;
        else if (d === 39) {
          if (sql.charCodeAt(i + 1) === 39) i += 2;
          else break;
        } else i++;
      }
      i++;
    } else if (c === 34 /* " */) {
      i++;
      while (i < len) {
        if (sql.charCodeAt(i) === 34) {
          if (sql.charCodeAt(i + 1) === 34) i += 2;
          else break;
        } else i++;
      }
      i++;
    } else if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? len : nl + 1;
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      // Block comments nest in Postgres.
      let depth = 1;
      i += 2;
      while (i < len && depth > 0) {
        if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === 36 /* $ */ && (i === 0 || !isIdentChar(sql.charCodeAt(i - 1)))) {
      let j = i + 1;
      if (isDigit(sql.charCodeAt(j))) {
        while (j < len && isDigit(sql.charCodeAt(j))) j++;
        out.push({ start: i, end: j, n: Number(sql.slice(i + 1, j)) });
        i = j;
        continue;
      }
      // $tag$ … $tag$ (the tag may be empty); anything else is just a '$'.
      while (j < len && isIdentChar(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
      if (sql.charCodeAt(j) === 36 && (j === i + 1 || isIdentStart(sql.charCodeAt(i + 1)))) {
        const tag = sql.slice(i, j + 1);
        const close = sql.indexOf(tag, j + 1);
        i = close < 0 ? len : close + tag.length;
      } else i = j;
    } else if (isIdentStart(c)) {
      // Skip a whole identifier, so the '$' inside `a$1` is not taken for a parameter.
      i++;
      while (i < len && isIdentChar(sql.charCodeAt(i))) i++;
    } else i++;
  }
  return out;
}

/**
 * Renumber the parameters of `sql` 1..k in order of first appearance. Returns the new text and,
 * for each new number j (index j - 1), the old number it stands for.
 */
export function renumberParams(sql: string): { sql: string; oldNumbers: number[] } {
  const refs = paramRefs(sql);
  const newOf = new Map<number, number>();
  const oldNumbers: number[] = [];
  let out = '';
  let at = 0;
  for (const r of refs) {
    let n = newOf.get(r.n);
    if (n === undefined) {
      oldNumbers.push(r.n);
      n = oldNumbers.length;
      newOf.set(r.n, n);
    }
    out += `${sql.slice(at, r.start)}$${n}`;
    at = r.end;
  }
  return { sql: out + sql.slice(at), oldNumbers };
}
