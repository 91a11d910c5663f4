// Tests for the Postgres-compatible extended hash: fixed vectors plus a random sweep against a real server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hashInt8, hashInt8Number, hashInt8Parts, hashKey, hashKeyParts, hashText, hashUuid, parseIntKey, partsToHash, KeyValueError } from '../../config/hash.js';
import type { KeyType } from '../../config/types.js';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/postgres.js';

// dist/test/config → test/fixtures in the source tree.
const fixture = fileURLToPath(new URL('../../../test/fixtures/hash-vectors.csv', import.meta.url));

function readVectors(): { type: KeyType; value: string; hash: bigint }[] {
  const out: { type: KeyType; value: string; hash: bigint }[] = [];
  for (const line of readFileSync(fixture, 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('type,')) continue;
    const i1 = line.indexOf(',');
    const i2 = line.lastIndexOf(',');
    const type = line.slice(0, i1) as KeyType;
    let value = line.slice(i1 + 1, i2);
    if (type === 'text') value = value.slice(1, -1).replaceAll("''", "'");
    out.push({ type, value, hash: BigInt(line.slice(i2 + 1)) });
  }
  return out;
}

describe('hash vectors from PostgreSQL 15', () => {
  const vectors = readVectors();
  it('has vectors for every key family', () => {
    assert.ok(vectors.length >= 25);
    for (const t of ['int2', 'int4', 'int8', 'text', 'uuid']) assert.ok(vectors.some((v) => v.type === t), t);
  });
  for (const v of vectors) {
    it(`${v.type} ${JSON.stringify(v.value).slice(0, 40)}`, () => {
      assert.equal(hashKey(v.type, v.value), v.hash);
      if (v.type.startsWith('int')) {
        assert.equal(hashInt8(BigInt(v.value)), v.hash);
        assert.equal(partsToHash(hashInt8Parts(BigInt(v.value), { hi: 0, lo: 0 })), v.hash);
      }
      if (v.type === 'text') assert.equal(hashText(v.value), v.hash);
      if (v.type === 'uuid') assert.equal(hashUuid(v.value), v.hash);
    });
  }
});

describe('hash API', () => {
  it('int2/int4/int8 of one value hash alike, from strings, numbers and bigints', () => {
    for (const v of [0, 1, -1, 42, 32767, -32768]) {
      const h = hashInt8(BigInt(v));
      assert.equal(hashKey('int2', String(v)), h);
      assert.equal(hashKey('int4', v), h);
      assert.equal(hashKey('int8', BigInt(v)), h);
      assert.equal(hashInt8Number(v), h);
    }
  });
  it('varchar hashes as text', () => {
    assert.equal(hashKey('varchar', 'héllo'), hashText('héllo'));
  });
  it('parses integers like Postgres 15 (whitespace, sign; no hex, no underscores)', () => {
    assert.equal(parseIntKey('int8', '  -42 '), -42);
    assert.equal(parseIntKey('int8', '+7'), 7);
    assert.equal(parseIntKey('int8', '9223372036854775807'), 9223372036854775807n);
    assert.equal(parseIntKey('int8', '-9223372036854775808'), -9223372036854775808n);
    for (const bad of ['', ' ', '-', '1.5', '0x10', '1_000', 'abc', '1e3']) {
      assert.throws(() => parseIntKey('int8', bad), (e: unknown) => e instanceof KeyValueError && e.sqlstate === '22P02', bad);
    }
  });
  it('range-checks each integer width with 22003', () => {
    const range = (e: unknown) => e instanceof KeyValueError && e.sqlstate === '22003';
    assert.throws(() => hashKey('int2', '32768'), range);
    assert.throws(() => hashKey('int2', -32769), range);
    assert.throws(() => hashKey('int4', '2147483648'), range);
    assert.throws(() => hashKey('int8', '9223372036854775808'), range);
    assert.throws(() => hashKey('int8', 2n ** 63n), range);
    assert.equal(hashKey('int4', '-2147483648'), hashInt8(-2147483648n));
  });
  it('accepts uuids in any case, with or without hyphens or braces, and rejects the rest', () => {
    const canon = hashUuid('123e4567-e89b-12d3-a456-426614174000');
    assert.equal(hashUuid('123E4567-E89B-12D3-A456-426614174000'), canon);
    assert.equal(hashUuid('123e4567e89b12d3a456426614174000'), canon);
    assert.equal(hashUuid('{123e4567-e89b-12d3-a456-426614174000}'), canon);
    assert.equal(hashUuid('123e-4567-e89b-12d3-a456-4266-1417-4000'), canon);
    for (const bad of ['', '123e4567-e89b-12d3-a456-42661417400', '123e4567-e89b-12d3-a456-4266141740000', '123e4567-e89b-12d3-a456-42661417400g', '-123e4567e89b12d3a456426614174000', '123e4567e89b12d3a456426614174000-', '{123e4567e89b12d3a456426614174000']) {
      assert.throws(() => hashUuid(bad), (e: unknown) => e instanceof KeyValueError && e.sqlstate === '22P02', bad);
    }
  });
  it('hashKeyParts writes into the given slot', () => {
    const out = { hi: 0, lo: 0 };
    assert.equal(hashKeyParts('int8', '12345', out), out);
    assert.equal(partsToHash(out), hashInt8(12345n));
    assert.ok(out.lo >= 0 && out.lo < 2 ** 32);
  });
});

// Deterministic pseudo-random numbers so a failure reproduces.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('hash against a real PostgreSQL server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(stopAllTestServers);

  it('int2/int4/int8 incl. limits and negatives', async () => {
    const r = rng(1);
    const ints: bigint[] = [0n, 1n, -1n, 2n ** 31n, -(2n ** 31n), 2n ** 31n - 1n, 2n ** 32n, -(2n ** 32n), 2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)];
    for (let i = 0; i < 3000; i++) {
      const hi = BigInt(Math.floor(r() * 2 ** 32)) - 2n ** 31n;
      const lo = BigInt(Math.floor(r() * 2 ** 32));
      ints.push(i % 3 === 0 ? (hi << 32n) + lo : i % 3 === 1 ? BigInt(Math.floor((r() - 0.5) * 2 ** 32)) : BigInt(Math.floor((r() - 0.5) * 65536)));
    }
    const c = await server.client();
    const res = await c.query<{ h: string }>('SELECT hashint8extended(x, 0)::text AS h FROM unnest($1::int8[]) WITH ORDINALITY AS u(x, n) ORDER BY n', [ints.map(String)]);
    assert.equal(res.rows.length, ints.length);
    ints.forEach((v, i) => assert.equal(hashInt8(v), BigInt(res.rows[i]!.h), `int8 ${v}`));
    const small = ints.filter((v) => v >= -32768n && v <= 32767n);
    const s2 = await c.query<{ h4: string; h2: string }>('SELECT hashint4extended(x::int4, 0)::text AS h4, hashint2extended(x::int2, 0)::text AS h2 FROM unnest($1::int8[]) WITH ORDINALITY AS u(x, n) ORDER BY n', [small.map(String)]);
    small.forEach((v, i) => {
      assert.equal(hashKey('int2', String(v)), BigInt(s2.rows[i]!.h2), `int2 ${v}`);
      assert.equal(hashKey('int4', String(v)), BigInt(s2.rows[i]!.h4), `int4 ${v}`);
    });
  });

  it('text of every length 0..40 and multibyte UTF-8', async () => {
    const r = rng(2);
    const alphabet = ['a', 'Z', '0', ' ', "'", 'é', 'ß', '€', '中', '😀', '\u0001', '\\'];
    const texts: string[] = [''];
    for (let len = 0; len <= 40; len++) {
      for (let k = 0; k < 20; k++) {
        let s = '';
        // Half ASCII-only (byte length = len exactly), half mixed.
        for (let j = 0; j < len; j++) s += k % 2 === 0 ? String.fromCharCode(32 + Math.floor(r() * 95)) : alphabet[Math.floor(r() * alphabet.length)]!;
        texts.push(s);
      }
    }
    texts.push('x'.repeat(1000), 'ü'.repeat(333));
    const c = await server.client();
    const res = await c.query<{ h: string; v: string }>('SELECT hashtextextended(x, 0)::text AS h, hashtextextended(x::varchar, 0)::text AS v FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n', [texts]);
    texts.forEach((t, i) => {
      assert.equal(hashText(t), BigInt(res.rows[i]!.h), `text ${JSON.stringify(t)}`);
      assert.equal(hashKey('varchar', t), BigInt(res.rows[i]!.v));
    });
  });

  it('uuid', async () => {
    const r = rng(3);
    const uuids: string[] = ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'];
    for (let i = 0; i < 1000; i++) {
      let hex = '';
      for (let j = 0; j < 32; j++) hex += Math.floor(r() * 16).toString(16);
      uuids.push(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
    }
    const c = await server.client();
    const res = await c.query<{ h: string }>('SELECT uuid_hash_extended(x, 0)::text AS h FROM unnest($1::uuid[]) WITH ORDINALITY AS u(x, n) ORDER BY n', [uuids]);
    uuids.forEach((u, i) => {
      assert.equal(hashUuid(u), BigInt(res.rows[i]!.h), u);
      assert.equal(hashUuid(u.toUpperCase().replaceAll('-', '')), BigInt(res.rows[i]!.h));
    });
  });
});
