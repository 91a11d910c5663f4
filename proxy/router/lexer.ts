// Normalizing SQL lexer: statement text → cache key ("shape") + literal values + statement spans.
//
// One pass over the text, no token objects. The shape keeps everything that decides a route
// plan and drops what does not: literals become placeholders (their values go to `literals`, in
// order), comments and whitespace runs become at most one space (none next to `( ) , ; [ ]`),
// unquoted text is ASCII-lower-cased (as Postgres folds identifiers, so `Été` stays distinct from
// `été`), quoted identifiers and `$n` parameters are kept verbatim.
//
// Placeholders start with a backslash, which cannot occur in valid SQL outside a literal, so no
// shape of one statement can equal the shape of a structurally different one:
//   \?  numeric literal (1, -5, 1.5e3, .5; a '-' right after an operator, '(' or ',' is folded
//       into the literal because Postgres folds it into the constant too)
//   \s  string literal ('…', E'…', N'…', $$…$$, $tag$…$tag$), value decoded exactly
//   \b  bit-string literal (B'…' and X'…'), value as written between the quotes
//   \u  U&'…' string, decoded with the default escape; not usable as a key if UESCAPE follows
// Literal *kinds* are recoverable from `literalStarts` and the text, so they are not stored.
//
// Assumes standard_conforming_strings = on (the default since 9.1): backslashes are literal
// in '…' and only escape in E'…'.

export interface LexResult {
  shape: string;
  /** Literal values in text order: numbers as written (sign folded in), strings decoded. */
  literals: string[];
  /** Char offset in the text of each literal's first char (its sign, prefix or quote). */
  literalStarts: number[];
  /** [start, end) char spans of the non-empty statements, without the terminating ';'. */
  statements: [number, number][];
}

const enum C {
  Tab = 9, Nl = 10, Vt = 11, Ff = 12, Cr = 13, Space = 32,
  Bang = 33, Dq = 34, Hash = 35, Dollar = 36, Pct = 37, Amp = 38, Sq = 39, LParen = 40, RParen = 41,
  Star = 42, Plus = 43, Comma = 44, Minus = 45, Dot = 46, Slash = 47, D0 = 48, D7 = 55, D9 = 57,
  Colon = 58, Semi = 59, Lt = 60, Eq = 61, Gt = 62, Question = 63, At = 64,
  UA = 65, UB = 66, UE = 69, UN = 78, UU = 85, UX = 88, UZ = 90, LBracket = 91, Backslash = 92, RBracket = 93,
  Caret = 94, Underscore = 95, Backtick = 96, La = 97, Lb = 98, Le = 101, Ln = 110, Lu = 117, Lx = 120, Lz = 122,
  Pipe = 124, Tilde = 126,
}

function isSpace(ch: number): boolean {
  return ch === C.Space || (ch >= C.Tab && ch <= C.Cr);
}

/** Chars that continue an identifier or keyword (Postgres: letters, digits, _, $, non-ASCII). */
export function isIdentChar(ch: number): boolean {
  return (ch >= C.La && ch <= C.Lz) || (ch >= C.UA && ch <= C.UZ) || (ch >= C.D0 && ch <= C.D9) || ch === C.Underscore || ch === C.Dollar || ch >= 0x80;
}

function isIdentStart(ch: number): boolean {
  return (ch >= C.La && ch <= C.Lz) || (ch >= C.UA && ch <= C.UZ) || ch === C.Underscore || ch >= 0x80;
}

function isDigit(ch: number): boolean {
  return ch >= C.D0 && ch <= C.D9;
}

/** Operator characters after which a '-' is unary (so `= -5` is the constant -5). */
function isOperatorChar(ch: number): boolean {
  switch (ch) {
    case C.Plus: case C.Minus: case C.Star: case C.Slash: case C.Lt: case C.Gt: case C.Eq: case C.Tilde:
    case C.Bang: case C.At: case C.Hash: case C.Pct: case C.Caret: case C.Amp: case C.Pipe: case C.Backtick:
    case C.Question: case C.LParen: case C.Comma: case C.LBracket: case C.Colon:
      return true;
    default:
      return false;
  }
}

/** Punctuation that is always a token of its own, so spaces around it carry no meaning. */
function isTight(ch: number): boolean {
  return ch === C.LParen || ch === C.RParen || ch === C.Comma || ch === C.Semi || ch === C.LBracket || ch === C.RBracket;
}

/** Lower-case A-Z only: Postgres folds unquoted identifiers that way in UTF-8 databases. */
export function asciiLower(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch >= C.UA && ch <= C.UZ) break;
  }
  if (i === s.length) return s;
  let ascii = true;
  for (let j = i; j < s.length; j++) {
    if (s.charCodeAt(j) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return s.toLowerCase();
  let out = s.slice(0, i);
  for (let j = i; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    out += ch >= C.UA && ch <= C.UZ ? String.fromCharCode(ch + 32) : s[j];
  }
  return out;
}

/** End (exclusive) of a -- comment starting at i. */
function lineCommentEnd(sql: string, i: number): number {
  const nl = sql.indexOf('\n', i + 2);
  return nl < 0 ? sql.length : nl + 1;
}

/** End (exclusive) of a nested /* comment starting at i; unterminated runs to the end. */
function blockCommentEnd(sql: string, i: number): number {
  let depth = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql.charCodeAt(i);
    if (ch === C.Slash && sql.charCodeAt(i + 1) === C.Star) {
      depth++;
      i += 2;
    } else if (ch === C.Star && sql.charCodeAt(i + 1) === C.Slash) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return n;
}

/** End (exclusive) of a "quoted identifier" whose opening quote is at i. */
function quotedIdentEnd(sql: string, i: number): number {
  for (let j = i + 1; j < sql.length; j++) {
    if (sql.charCodeAt(j) === C.Dq) {
      if (sql.charCodeAt(j + 1) === C.Dq) j++;
      else return j + 1;
    }
  }
  return sql.length;
}

/** If a dollar-quote opener `$tag$` starts at i, its length; else 0. */
function dollarTagLength(sql: string, i: number): number {
  let j = i + 1;
  const first = sql.charCodeAt(j);
  if (first === C.Dollar) return 2;
  if (!isIdentStart(first)) return 0;
  j++;
  while (j < sql.length) {
    const ch = sql.charCodeAt(j);
    if (ch === C.Dollar) return j - i + 1;
    if (!isIdentChar(ch)) return 0;
    j++;
  }
  return 0;
}

/**
 * After a string literal's closing quote at `end`, Postgres joins a following quoted string
 * if only whitespace that includes a newline separates them ('foo'\n'bar' is 'foobar').
 * Returns the index of the continuing quote, or -1.
 */
function continuationQuote(sql: string, end: number): number {
  let sawNewline = false;
  let j = end;
  while (j < sql.length) {
    const ch = sql.charCodeAt(j);
    if (ch === C.Nl || ch === C.Cr) sawNewline = true;
    else if (!isSpace(ch)) break;
    j++;
  }
  return sawNewline && sql.charCodeAt(j) === C.Sq ? j : -1;
}

const utf8 = new TextDecoder();

interface StringScan {
  value: string;
  end: number;
}

/** A '…' (or N'…', B'…', X'…') body from the opening quote at i; '' is a quote. */
function scanPlainString(sql: string, i: number, out: StringScan): void {
  let value = '';
  let q = i;
  for (;;) {
    let j = q + 1;
    let segStart = j;
    for (;;) {
      const k = sql.indexOf("'", j);
      if (k < 0) {
        // Unterminated: libpg-query reports the syntax error; keep the rest as the value.
        out.value = value + sql.slice(segStart);
        out.end = sql.length;
        return;
      }
      if (sql.charCodeAt(k + 1) === C.Sq) {
        value += sql.slice(segStart, k + 1);
        j = segStart = k + 2;
        continue;
      }
      value += sql.slice(segStart, k);
      q = continuationQuote(sql, k + 1);
      if (q < 0) {
        out.value = value;
        out.end = k + 1;
        return;
      }
      break;
    }
  }
}

function hexDigit(ch: number): number {
  if (ch >= C.D0 && ch <= C.D9) return ch - C.D0;
  if (ch >= C.La && ch <= 102) return ch - 87;
  if (ch >= C.UA && ch <= 70) return ch - 55;
  return -1;
}

/** An E'…' body from the opening quote at i, with Postgres's backslash escapes. */
function scanEscapeString(sql: string, i: number, out: StringScan): void {
  let value = '';
  // \ooo and \xhh are bytes, decoded as UTF-8 once a run of them ends (E'\303\251' is é).
  let bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length > 0) {
      value += utf8.decode(new Uint8Array(bytes));
      bytes = [];
    }
  };
  let j = i + 1;
  const n = sql.length;
  while (j < n) {
    const ch = sql.charCodeAt(j);
    if (ch === C.Sq) {
      if (sql.charCodeAt(j + 1) === C.Sq) {
        flush();
        value += "'";
        j += 2;
        continue;
      }
      const q = continuationQuote(sql, j + 1);
      if (q >= 0) {
        j = q + 1;
        continue;
      }
      flush();
      out.value = value;
      out.end = j + 1;
      return;
    }
    if (ch !== C.Backslash) {
      flush();
      value += sql[j];
      j++;
      continue;
    }
    const e = sql.charCodeAt(j + 1);
    j += 2;
    if (e >= C.D0 && e <= C.D7) {
      let v = e - C.D0;
      for (let k = 0; k < 2 && sql.charCodeAt(j) >= C.D0 && sql.charCodeAt(j) <= C.D7; k++) v = v * 8 + sql.charCodeAt(j++) - C.D0;
      bytes.push(v & 0xff);
      continue;
    }
    if (e === C.Lx && hexDigit(sql.charCodeAt(j)) >= 0) {
      let v = hexDigit(sql.charCodeAt(j++));
      if (hexDigit(sql.charCodeAt(j)) >= 0) v = v * 16 + hexDigit(sql.charCodeAt(j++));
      bytes.push(v);
      continue;
    }
    flush();
    if (e === C.Lu || e === C.UU) {
      const len = e === C.Lu ? 4 : 8;
      let v = 0;
      let k = 0;
      for (; k < len && hexDigit(sql.charCodeAt(j + k)) >= 0; k++) v = v * 16 + hexDigit(sql.charCodeAt(j + k));
      if (k === len) {
        // \uD83D\uDE00 surrogate halves combine by themselves in a UTF-16 string.
        value += len === 4 ? String.fromCharCode(v) : String.fromCodePoint(v);
        j += len;
        continue;
      }
      value += sql[j - 1];
      continue;
    }
    switch (e) {
      case C.Lb: value += '\b'; break;
      case 102: value += '\f'; break;
      case C.Ln: value += '\n'; break;
      case 114: value += '\r'; break;
      case 116: value += '\t'; break;
      default:
        if (j - 1 < n) value += sql[j - 1];
    }
  }
  flush();
  out.value = value;
  out.end = n;
}

/** Decode a U&'…' body with the default escape character '\'. */
function decodeUnicodeEscapes(body: string): string {
  let out = '';
  for (let j = 0; j < body.length; j++) {
    const ch = body[j];
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    if (body[j + 1] === '\\') {
      out += '\\';
      j++;
    } else if (body[j + 1] === '+' && /^[0-9a-fA-F]{6}/.test(body.slice(j + 2, j + 8))) {
      out += String.fromCodePoint(parseInt(body.slice(j + 2, j + 8), 16));
      j += 7;
    } else if (/^[0-9a-fA-F]{4}/.test(body.slice(j + 1, j + 5))) {
      out += String.fromCharCode(parseInt(body.slice(j + 1, j + 5), 16));
      j += 4;
    } else {
      out += ch;
    }
  }
  return out;
}

/** End (exclusive) of a numeric literal starting at i (digit or '.digit'). */
function numberEnd(sql: string, i: number): number {
  const n = sql.length;
  let j = i;
  // Postgres 16+ (and libpg-query 17) also read 0x1F, 0o17, 0b101 and 1_000 as one number.
  if (sql.charCodeAt(j) === C.D0) {
    const p = sql.charCodeAt(j + 1) | 0x20;
    if ((p === C.Lx || p === 111 || p === C.Lb) && hexDigit(sql.charCodeAt(j + 2)) >= 0) {
      j += 2;
      while (j < n && (hexDigit(sql.charCodeAt(j)) >= 0 || sql.charCodeAt(j) === C.Underscore)) j++;
      return j;
    }
  }
  while (j < n && (isDigit(sql.charCodeAt(j)) || (sql.charCodeAt(j) === C.Underscore && isDigit(sql.charCodeAt(j + 1))))) j++;
  if (sql.charCodeAt(j) === C.Dot && sql.charCodeAt(j + 1) !== C.Dot) {
    j++;
    while (j < n && isDigit(sql.charCodeAt(j))) j++;
  }
  const e = sql.charCodeAt(j) | 0x20;
  if (e === C.Le) {
    let k = j + 1;
    const s = sql.charCodeAt(k);
    if (s === C.Plus || s === C.Minus) k++;
    if (isDigit(sql.charCodeAt(k))) {
      while (k < sql.length && isDigit(sql.charCodeAt(k))) k++;
      j = k;
    }
  }
  return j;
}

const scan: StringScan = { value: '', end: 0 };

/** Lex one query string (possibly several statements). */
export function lex(sql: string): LexResult {
  const n = sql.length;
  const literals: string[] = [];
  const literalStarts: number[] = [];
  const statements: [number, number][] = [];
  let shape = '';
  let segStart = 0; // start of the raw run not yet copied into the shape
  let pendingSpace = false;
  let prevSignificant = 0; // last non-space char code outside literals/comments (0 = none)
  let depth = 0;
  let stmtStart = -1;
  let lastEnd = 0;

  // Last char appended to the shape: reading it back from `shape` would flatten the rope.
  let shapeLast = 0;
  const emit = (piece: string): void => {
    if (pendingSpace) {
      if (shapeLast !== 0 && !isTight(shapeLast) && !isTight(piece.charCodeAt(0))) shape += ' ';
      pendingSpace = false;
    }
    shape += piece;
    shapeLast = piece.charCodeAt(piece.length - 1);
  };
  const flush = (to: number): void => {
    if (to > segStart) emit(asciiLower(sql.slice(segStart, to)));
  };
  const literal = (start: number, end: number, value: string, placeholder: string): void => {
    flush(start);
    literals.push(value);
    literalStarts.push(start);
    emit(placeholder);
    segStart = end;
    if (stmtStart < 0) stmtStart = start;
    lastEnd = end;
    prevSignificant = C.Sq;
  };

  let i = 0;
  while (i < n) {
    const ch = sql.charCodeAt(i);
    if (isSpace(ch)) {
      flush(i);
      while (i < n && isSpace(sql.charCodeAt(i))) i++;
      segStart = i;
      pendingSpace = true;
      continue;
    }
    if (ch === C.Minus && sql.charCodeAt(i + 1) === C.Minus) {
      flush(i);
      i = segStart = lineCommentEnd(sql, i);
      pendingSpace = true;
      continue;
    }
    if (ch === C.Slash && sql.charCodeAt(i + 1) === C.Star) {
      flush(i);
      i = segStart = blockCommentEnd(sql, i);
      pendingSpace = true;
      continue;
    }
    if (stmtStart < 0 && ch !== C.Semi) stmtStart = i;
    // Identifiers and keywords are consumed whole, so every other char the loop sees starts a
    // token: a digit here is a number, a '$' a parameter or dollar quote, never part of a word.
    if (isIdentStart(ch)) {
      const next = sql.charCodeAt(i + 1);
      if (next === C.Sq) {
        const p = ch | 0x20;
        if (p === C.Le) {
          scanEscapeString(sql, i + 1, scan);
          literal(i, scan.end, scan.value, '\\s');
          i = scan.end;
          continue;
        }
        if (p === C.Ln || p === C.Lb || p === C.Lx) {
          scanPlainString(sql, i + 1, scan);
          literal(i, scan.end, scan.value, p === C.Ln ? '\\s' : '\\b');
          i = scan.end;
          continue;
        }
      } else if (next === C.Amp && (ch | 0x20) === C.Lu && sql.charCodeAt(i + 2) === C.Sq) {
        scanPlainString(sql, i + 2, scan);
        literal(i, scan.end, decodeUnicodeEscapes(scan.value), '\\u');
        i = scan.end;
        continue;
      }
      i++;
      while (i < n && isIdentChar(sql.charCodeAt(i))) i++;
      prevSignificant = C.La;
      lastEnd = i;
      continue;
    }
    switch (ch) {
      case C.Sq:
        scanPlainString(sql, i, scan);
        literal(i, scan.end, scan.value, '\\s');
        i = scan.end;
        continue;
      case C.Dq: {
        flush(i);
        const end = quotedIdentEnd(sql, i);
        emit(sql.slice(i, end));
        segStart = i = lastEnd = end;
        prevSignificant = C.Dq;
        continue;
      }
      case C.Dollar: {
        if (isDigit(sql.charCodeAt(i + 1))) {
          // $n parameter: stays in the shape as written.
          i += 2;
          while (i < n && isDigit(sql.charCodeAt(i))) i++;
          lastEnd = i;
          prevSignificant = C.D0;
          continue;
        }
        const tagLen = dollarTagLength(sql, i);
        if (tagLen > 0) {
          const tag = sql.slice(i, i + tagLen);
          const close = sql.indexOf(tag, i + tagLen);
          const end = close < 0 ? n : close + tagLen;
          literal(i, end, sql.slice(i + tagLen, close < 0 ? n : close), '\\s');
          i = end;
          continue;
        }
        break;
      }
      case C.Semi:
        if (depth === 0) {
          if (stmtStart >= 0) statements.push([stmtStart, lastEnd]);
          stmtStart = -1;
        }
        i++;
        lastEnd = i;
        prevSignificant = ch;
        continue;
      case C.LParen:
      case C.LBracket:
        depth++;
        break;
      case C.RParen:
      case C.RBracket:
        if (depth > 0) depth--;
        break;
      default:
        break;
    }
    if (isDigit(ch) || (ch === C.Dot && isDigit(sql.charCodeAt(i + 1)))) {
      const end = numberEnd(sql, i);
      literal(i, end, sql.slice(i, end), '\\?');
      i = end;
      continue;
    }
    if (ch === C.Minus && isOperatorChar(prevSignificant)) {
      // Unary minus before a number: Postgres folds it into the constant, so do we.
      let j = i + 1;
      while (j < n && isSpace(sql.charCodeAt(j))) j++;
      const d = sql.charCodeAt(j);
      if (isDigit(d) || (d === C.Dot && isDigit(sql.charCodeAt(j + 1)))) {
        const end = numberEnd(sql, j);
        literal(i, end, '-' + sql.slice(j, end), '\\?');
        i = end;
        continue;
      }
    }
    // Ordinary char of an identifier, keyword or operator: stays in the raw run.
    prevSignificant = ch;
    i++;
    lastEnd = i;
  }
  flush(n);
  if (stmtStart >= 0) statements.push([stmtStart, lastEnd]);
  return { shape, literals, literalStarts, statements };
}

/** Skip whitespace and comments from i; returns the next significant index. */
export function skipSpaceAndComments(sql: string, i: number, end = sql.length): number {
  while (i < end) {
    const ch = sql.charCodeAt(i);
    if (isSpace(ch)) i++;
    else if (ch === C.Minus && sql.charCodeAt(i + 1) === C.Minus) i = lineCommentEnd(sql, i);
    else if (ch === C.Slash && sql.charCodeAt(i + 1) === C.Star) i = blockCommentEnd(sql, i);
    else break;
  }
  return i;
}

/** End of the token that starts at i, treating quoted things as one token. */
function tokenEnd(sql: string, i: number, end: number): number {
  const ch = sql.charCodeAt(i);
  if (ch === C.Sq) {
    scanPlainString(sql, i, scan);
    return scan.end;
  }
  if (ch === C.Dq) return quotedIdentEnd(sql, i);
  if (ch === C.Dollar) {
    const tagLen = dollarTagLength(sql, i);
    if (tagLen > 0) {
      const close = sql.indexOf(sql.slice(i, i + tagLen), i + tagLen);
      return close < 0 ? end : close + tagLen;
    }
  }
  if (isIdentChar(ch)) {
    if ((ch | 0x20) === C.Le && sql.charCodeAt(i + 1) === C.Sq) {
      scanEscapeString(sql, i + 1, scan);
      return scan.end;
    }
    if (sql.charCodeAt(i + 1) === C.Sq && ((ch | 0x20) === C.Ln || (ch | 0x20) === C.Lb || (ch | 0x20) === C.Lx)) {
      scanPlainString(sql, i + 1, scan);
      return scan.end;
    }
    if ((ch | 0x20) === C.Lu && sql.charCodeAt(i + 1) === C.Amp && (sql.charCodeAt(i + 2) === C.Sq || sql.charCodeAt(i + 2) === C.Dq)) {
      return tokenEnd(sql, i + 2, end);
    }
    let j = i + 1;
    while (j < end && isIdentChar(sql.charCodeAt(j))) j++;
    return j;
  }
  return i + 1;
}

/** Just past the ')' that closes the '(' at `i` (strings, quoted names and comments skipped). */
function closingParenEnd(sql: string, i: number, end: number): number {
  let depth = 0;
  while (i < end) {
    const ch = sql.charCodeAt(i);
    if (ch === C.LParen || ch === C.RParen) {
      depth += ch === C.LParen ? 1 : -1;
      i++;
      if (depth === 0) break;
      continue;
    }
    const s = skipSpaceAndComments(sql, i, end);
    i = s !== i ? s : tokenEnd(sql, i, end);
  }
  return i;
}

/**
 * The "( … )" rows after the first top-level VALUES keyword of an INSERT statement spanning
 * [start, end): their [start, end) char spans, in order. Used to cut a multi-row INSERT into one
 * INSERT per shard; spans depend on literal lengths, so they are found per execution.
 */
export function findValuesRows(sql: string, start: number, end: number): [number, number][] {
  let i = start;
  let depth = 0;
  let found = false;
  while (i < end) {
    i = skipSpaceAndComments(sql, i, end);
    if (i >= end) break;
    const ch = sql.charCodeAt(i);
    if (ch === C.LParen) {
      depth++;
      i++;
      continue;
    }
    if (ch === C.RParen) {
      depth--;
      i++;
      continue;
    }
    const t = tokenEnd(sql, i, end);
    if (depth === 0 && t - i === 6 && asciiLower(sql.slice(i, t)) === 'values') {
      i = t;
      found = true;
      break;
    }
    i = t;
  }
  const rows: [number, number][] = [];
  if (!found) return rows;
  for (;;) {
    i = skipSpaceAndComments(sql, i, end);
    if (sql.charCodeAt(i) !== C.LParen) break;
    const rowStart = i;
    i = closingParenEnd(sql, i, end);
    rows.push([rowStart, i]);
    i = skipSpaceAndComments(sql, i, end);
    if (sql.charCodeAt(i) !== C.Comma) break;
    i++;
  }
  return rows;
}

/**
 * The query of an `INSERT INTO t (cols) <query> [ON CONFLICT …] [RETURNING …]` statement spanning
 * [start, end): the [start, end) span of <query>, which begins after the column list (and an
 * OVERRIDING … VALUE clause) and ends before a top-level ON CONFLICT or RETURNING, or at the end
 * of the statement (without a trailing ';'). null when the statement has no column list.
 */
export function findInsertQuery(sql: string, start: number, end: number): [number, number] | null {
  const word = (i: number): string => asciiLower(sql.slice(i, tokenEnd(sql, i, end)));
  let i = start;
  // The column list: the first top-level '(' of the statement.
  for (;;) {
    i = skipSpaceAndComments(sql, i, end);
    if (i >= end) return null;
    if (sql.charCodeAt(i) === C.LParen) break;
    i = tokenEnd(sql, i, end);
  }
  i = skipSpaceAndComments(sql, closingParenEnd(sql, i, end), end);
  if (word(i) === 'overriding') {
    for (let k = 0; k < 3; k++) i = skipSpaceAndComments(sql, tokenEnd(sql, skipSpaceAndComments(sql, i, end), end), end);
  }
  const queryStart = i;
  let queryEnd = end;
  let depth = 0;
  while (i < end) {
    i = skipSpaceAndComments(sql, i, end);
    if (i >= end) break;
    const ch = sql.charCodeAt(i);
    if (ch === C.LParen || ch === C.RParen) {
      depth += ch === C.LParen ? 1 : -1;
      i++;
      continue;
    }
    const t = tokenEnd(sql, i, end);
    if (depth === 0) {
      const w = asciiLower(sql.slice(i, t));
      if (w === 'returning' || (w === 'on' && word(skipSpaceAndComments(sql, t, end)) === 'conflict')) {
        queryEnd = i;
        break;
      }
    }
    i = t;
  }
  // Trailing blanks and ';' belong to the statement, not to the query.
  while (queryEnd > queryStart && /[\s;]/.test(sql[queryEnd - 1]!)) queryEnd--;
  return queryEnd > queryStart ? [queryStart, queryEnd] : null;
}
