// Tests for the normalizing lexer: exact literal values, shapes, statement spans, VALUES rows.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findInsertQuery, findValuesRows, lex } from '../../../proxy/router/lexer.js';

function lits(sql: string): string[] {
  return lex(sql).literals;
}

describe('lexer: literal values are exact', () => {
  it("'…' with '' escapes; backslash is literal", () => {
    assert.deepEqual(lits("select 'it''s', '', 'a\\nb'"), ["it's", '', 'a\\nb']);
  });
  it("E'…' escapes: \\n \\t \\\\ \\' '' octal hex unicode", () => {
    assert.deepEqual(lits("select E'a\\nb', e'\\t\\\\', E'\\'x''', E'\\101\\x42', E'\\u00e9\\U0001F600', E'\\303\\251', E'\\q'"), ['a\nb', '\t\\', "'x'", 'AB', 'é😀', 'é', 'q']);
  });
  it('dollar quoting: $$…$$ and $tag$…$tag$ (quotes and $$ inside kept)', () => {
    assert.deepEqual(lits("select $$it's$$, $fn$ a $$ b $fn$, $a$$a$"), ["it's", ' a $$ b ', '']);
  });
  it('N, B, X and U& strings', () => {
    assert.deepEqual(lits("select N'n', B'1010', x'1F', U&'d\\0061t\\+000061'"), ['n', '1010', '1F', 'data']);
  });
  it("adjacent strings separated by a newline are one literal ('foo'\\n'bar')", () => {
    assert.deepEqual(lits("select 'foo'\n  'bar', 'a' 'b'"), ['foobar', 'a', 'b']);
  });
  it('numbers: ints, decimals, exponents, .5, signs folded after operators', () => {
    assert.deepEqual(lits('select 1, 1.5, 1e5, 1.5e-3, .5, 5., x = -7, f(-8), g(1,-9), a - 3, a- -4, y=- 10'), ['1', '1.5', '1e5', '1.5e-3', '.5', '5.', '-7', '-8', '1', '-9', '3', '-4', '-10']);
  });
  it('digits inside identifiers and $n params are not literals', () => {
    const r = lex('select t1.c2, $1, $12::int8 from t1');
    assert.deepEqual(r.literals, []);
    assert.equal(r.shape, 'select t1.c2,$1,$12::int8 from t1');
  });
  it('comments (-- and nested /* */) vanish, even with quotes inside', () => {
    const r = lex("select /* it's /* nested */ still */ 1 -- 'no'\n, 2");
    assert.deepEqual(r.literals, ['1', '2']);
    assert.equal(r.shape, 'select \\?,\\?');
  });
  it('quoted identifiers keep case and may contain quotes, semicolons and literals-looking text', () => {
    const r = lex('SELECT "My""Col;\'x\'" FROM "T"');
    assert.deepEqual(r.literals, []);
    assert.equal(r.shape, 'select "My""Col;\'x\'" from "T"');
    assert.equal(r.statements.length, 1);
  });
  it('literal starts point at the sign, prefix or quote', () => {
    const sql = "select x = -1, E'x', $$y$$";
    assert.deepEqual(lex(sql).literalStarts, [sql.indexOf('-1'), sql.indexOf("E'"), sql.indexOf('$$')]);
  });
});

describe('lexer: shapes', () => {
  const same = [
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 12345', "select  abalance\n\tfrom PGBENCH_ACCOUNTS where aid = -3 -- note"],
    ["select * from t where a = 'x' and b in (1, 2)", "SELECT * FROM t WHERE a = E'y\\n' AND b IN ( 7 ,8 )"],
    ['insert into t (a) values ($1)', 'INSERT INTO T(A) VALUES($1)'],
    ['select $$body$$', "select 'other'"],
  ];
  for (const [a, b] of same) it(`equal: ${a}`, () => assert.equal(lex(a!).shape, lex(b!).shape));
  const different = [
    ['select * from t where a = 1', 'select * from t where b = 1'],
    ['select * from t where a = 1', 'select * from t where a = $1'],
    ['select * from t where a = 1', 'select * from t where a = 1 and b = 2'],
    ['select * from "T"', 'select * from t'],
    ['select * from Été', 'select * from été'],
    ["select '1'", 'select 1'],
    ['select a - 1', 'select a -- 1'],
    ['select 1; select 2', 'select 1'],
  ];
  for (const [a, b] of different) it(`different: ${a} | ${b}`, () => assert.notEqual(lex(a!).shape, lex(b!).shape));
  it('lower-cases ASCII only', () => {
    assert.equal(lex('SELECT Ä FROM T').shape, 'select Ä from t');
  });
});

describe('lexer: statements', () => {
  it('reports [start, end) of each non-empty statement', () => {
    const sql = " begin ; select ';' ;; /* c */ commit;\n";
    const r = lex(sql);
    assert.deepEqual(r.statements.map(([s, e]) => sql.slice(s, e)), ['begin', "select ';'", 'commit']);
  });
  it('a semicolon inside parentheses, strings, dollar quotes or comments does not split', () => {
    const sql = "do $$ begin perform 1; end $$; select f(';'); -- ; \n select 2";
    assert.equal(lex(sql).statements.length, 3);
  });
});

describe('findValuesRows', () => {
  it('finds each top-level row, skipping parens in strings and nested calls', () => {
    const sql = "INSERT INTO t (a, b) VALUES (1, ')'), (f(2), '(('), ($1, E'\\')') ON CONFLICT (a) DO NOTHING RETURNING a";
    assert.deepEqual(findValuesRows(sql, 0, sql.length).map(([s, e]) => sql.slice(s, e)), ["(1, ')')", "(f(2), '((')", "($1, E'\\')')"]);
  });
  it('ignores a VALUES inside a CTE', () => {
    const sql = 'WITH v AS (VALUES (9)) INSERT INTO t (a) VALUES (1),(2)';
    assert.deepEqual(findValuesRows(sql, 0, sql.length).map(([s, e]) => sql.slice(s, e)), ['(1)', '(2)']);
  });
});

describe('findInsertQuery', () => {
  const q = (sql: string): string | null => {
    const span = findInsertQuery(sql, 0, sql.length);
    return span ? sql.slice(span[0], span[1]) : null;
  };
  it('is the text between the column list and ON CONFLICT / RETURNING / the end', () => {
    assert.equal(q('INSERT INTO t (a, b) SELECT g, 1 FROM generate_series(1, 3) g;'), 'SELECT g, 1 FROM generate_series(1, 3) g');
    assert.equal(q('insert into s.t as x (a) (select 1) on conflict (a) do nothing returning *'), '(select 1)');
    assert.equal(q("INSERT INTO t (a) SELECT x FROM u JOIN v ON u.k = v.k WHERE s = ' on conflict ' RETURNING a"), "SELECT x FROM u JOIN v ON u.k = v.k WHERE s = ' on conflict '");
    assert.equal(q('INSERT INTO t (a) OVERRIDING SYSTEM VALUE SELECT 1 -- note\n'), 'SELECT 1 -- note');
    assert.equal(q('INSERT INTO "T(" ("a)") VALUES (1)'), 'VALUES (1)');
  });
  it('is null without a column list', () => {
    assert.equal(q('INSERT INTO t SELECT 1'), null);
  });
});
