// Unit tests of COPY row framing, key fields, splitting and COPY TO merging, with input cut at every byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFormatOf } from '../../../proxy/copy/copy-format.js';
import { CopyOutMerger } from '../../../proxy/copy/copy-out-merge.js';
import { CopyRowError, CopySplitter } from '../../../proxy/copy/copy-splitter.js';
import { MISSING, readField, unescapeText } from '../../../proxy/copy/key-field.js';
import { BinaryFramer, LineFramer, type RowSink } from '../../../proxy/copy/row-framer.js';

function collect(framer: LineFramer | BinaryFramer, input: Buffer, cuts: number[]) {
  const got = { header: [] as string[], rows: [] as string[], lines: [] as number[], keys: [] as (string | null | undefined)[], trailer: 0 };
  const sink: RowSink = {
    header: (b) => got.header.push(b.toString('latin1')),
    row: (b, lines, key) => {
      got.rows.push(b.toString('latin1'));
      got.lines.push(lines);
      got.keys.push(key === undefined ? undefined : key === null ? null : key.toString('hex'));
    },
    trailer: () => got.trailer++,
  };
  let at = 0;
  for (const c of [...cuts, input.length]) {
    framer.push(input.subarray(at, c), sink);
    at = c;
  }
  framer.finish(sink);
  return got;
}

test('text framing: escaped newlines and backslashes, \\. ends the data, every cut point gives the same rows', () => {
  const input = Buffer.from('1\ta\\\nb\n2\tx\\\\\n3\tlast\n\\.\nignored\n');
  const whole = collect(new LineFramer(false, false), input, []);
  assert.deepEqual(whole.rows, ['1\ta\\\nb\n', '2\tx\\\\\n', '3\tlast\n']);
  for (let i = 1; i < input.length; i++) {
    for (const j of [i + 1, i + 5]) {
      if (j >= input.length) continue;
      assert.deepEqual(collect(new LineFramer(false, false), input, [i, j]).rows, whole.rows, `cuts ${i},${j}`);
    }
  }
});

test('CSV framing: quoted newlines count as lines, header first, custom escape, unterminated last row', () => {
  const input = Buffer.from('h1,h2\n1,"a\nb"\n2,"q\\"x\n"\n3,end');
  for (let i = 0; i <= input.length; i++) {
    const got = collect(new LineFramer(true, true, 0x22, 0x5c), input, [i]);
    assert.deepEqual(got.header, ['h1,h2\n']);
    assert.deepEqual(got.rows, ['1,"a\nb"\n', '2,"q\\"x\n"\n', '3,end']);
    assert.deepEqual(got.lines, [2, 2, 1]);
  }
});

test('binary framing: header, tuples with key bytes, NULL key, trailer; cut anywhere', () => {
  const tuple = (key: Buffer | null, other: string) => {
    const o = Buffer.from(other);
    const b = Buffer.alloc(2 + 4 + (key?.length ?? 0) + 4 + o.length);
    let p = b.writeInt16BE(2, 0);
    p = b.writeInt32BE(key ? key.length : -1, p);
    if (key) p += key.copy(b, p);
    p = b.writeInt32BE(o.length, p);
    o.copy(b, p);
    return b;
  };
  const header = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.from([0, 0, 0, 0, 0, 0, 0, 3, 9, 9, 9])]);
  const input = Buffer.concat([header, tuple(Buffer.from([0, 0, 0, 7]), 'seven'), tuple(null, 'null key'), tuple(Buffer.from([0, 0, 1, 0]), 'x'.repeat(40)), Buffer.from([0xff, 0xff])]);
  for (let i = 0; i <= input.length; i++) {
    const got = collect(new BinaryFramer(0), input, [i, Math.min(input.length, i + 3)]);
    assert.equal(got.header.length, 1);
    assert.equal(got.header[0]!.length, 22);
    assert.deepEqual(got.keys, ['00000007', null, '00000100']);
    assert.equal(got.trailer, 1);
  }
});

test('key fields: text escapes and NULL, CSV quotes and NULL vs empty string, missing fields', () => {
  const text = copyFormatOf('text', {});
  assert.equal(readField(Buffer.from('a\\tb\tkey\\x41\\101\n'), 1, text), 'keyAA');
  assert.equal(readField(Buffer.from('a\t\\N\n'), 1, text), null);
  assert.equal(readField(Buffer.from('a\n'), 1, text), MISSING);
  assert.equal(unescapeText('\\n\\\\\\z'), '\n\\z');
  const csv = copyFormatOf('csv', {});
  assert.equal(readField(Buffer.from('x,"a ""b"", c"\r\n'), 1, csv), 'a "b", c');
  assert.equal(readField(Buffer.from('x,,y\n'), 1, csv), null);
  assert.equal(readField(Buffer.from('x,"",y\n'), 1, csv), '');
  const semi = copyFormatOf('csv', { delimiter: ';', null: 'NIL', quote: "'" });
  assert.equal(readField(Buffer.from("1;'a;b';NIL\n"), 1, semi), 'a;b');
  assert.equal(readField(Buffer.from("1;'a;b';NIL\n"), 2, semi), null);
  assert.throws(() => copyFormatOf('csv', { delimiter: ';;' }), /single one-byte character/);
});

test('splitter: rows to shards by key, header to all, 64 KB messages, client line numbers of shard lines', () => {
  const sent = new Map<number, Buffer[]>([[0, []], [1, []]]);
  const sp = new CopySplitter({
    format: copyFormatOf('csv', { header: true }), keyIndex: 0, keyColumn: 'id', table: 't', shardIds: [0, 1],
    shardOfText: (k) => (Number(k) % 2), shardOfBinary: () => 0, flushBytes: 32,
    send: (id, msg) => sent.get(id)!.push(msg),
  });
  sp.push(Buffer.from('id,v\n1,a\n2,b\n3,"multi\nline"\n4,d\n5,e\n'));
  sp.finish();
  const body = (id: number) => Buffer.concat(sent.get(id)!.map((m) => m.subarray(5))).toString();
  assert.equal(body(0), 'id,v\n2,b\n4,d\n');
  assert.equal(body(1), 'id,v\n1,a\n3,"multi\nline"\n5,e\n');
  for (const msgs of sent.values()) for (const m of msgs) assert.equal(m.readInt32BE(1), m.length - 1);
  assert.equal(sp.rows, 5);
  // Shard 1's line 4 is the end of "3" (client lines 4-5 → 5), its line 5 is client line 7.
  assert.equal(sp.clientLine(1, 2), 2);
  assert.equal(sp.clientLine(1, 4), 5);
  assert.equal(sp.clientLine(1, 5), 7);
  assert.equal(sp.clientLine(0, 3), 6);
  assert.equal(sp.clientLine(0, 9), null);
  const bad = new CopySplitter({
    format: copyFormatOf('text', {}), keyIndex: 1, keyColumn: 'id', table: 't', shardIds: [0],
    shardOfText: (k) => { if (k === 'x') throw new (class extends Error {})(); return 0; }, shardOfBinary: () => 0, send: () => {},
  });
  assert.throws(() => bad.push(Buffer.from('a\t1\nb\n')), (e: unknown) => e instanceof CopyRowError && e.sqlstate === '22P04' && e.where === 'COPY t, line 2: "b"');
});

test('splitter memory: pending bytes per shard stay under the flush size, whatever the input size', () => {
  let maxMsg = 0;
  const sp = new CopySplitter({
    format: copyFormatOf('text', {}), keyIndex: 0, keyColumn: 'id', table: 't', shardIds: [0, 1, 2],
    shardOfText: (k) => Number(k) % 3, shardOfBinary: () => 0, send: (_id, m) => (maxMsg = Math.max(maxMsg, m.length)),
  });
  const chunk = Buffer.from(Array.from({ length: 1000 }, (_, i) => `${i}\tpayload payload payload\n`).join(''));
  for (let i = 0; i < 300; i++) sp.push(chunk);
  sp.finish();
  assert.equal(sp.rows, 300_000);
  assert.ok(maxMsg <= 64 * 1024 + 5 + 64, `largest message ${maxMsg}`);
});

test('COPY TO merge: one CSV header, one binary header and trailer', () => {
  const csv = new CopyOutMerger(false, true);
  assert.equal(csv.data(0, Buffer.from('h\n'))?.toString(), 'h\n');
  assert.equal(csv.data(1, Buffer.from('h\n')), null);
  assert.equal(csv.data(1, Buffer.from('r1\n'))?.toString(), 'r1\n');
  assert.equal(csv.end(), null);
  const bin = new CopyOutMerger(true, false);
  const hdr = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
  const tup = Buffer.from([0, 1, 0, 0, 0, 1, 65]);
  assert.deepEqual(bin.data(0, Buffer.concat([hdr, tup])), Buffer.concat([hdr, tup]));
  assert.deepEqual(bin.data(1, Buffer.concat([hdr, tup])), tup);
  assert.equal(bin.data(0, Buffer.from([0xff, 0xff])), null);
  const empty = new CopyOutMerger(true, false);
  assert.deepEqual(empty.data(3, Buffer.concat([hdr, Buffer.from([0xff, 0xff])])), hdr);
  assert.deepEqual(bin.end(), Buffer.from([0xff, 0xff]));
});
