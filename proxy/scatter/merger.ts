// Scatter merger: turns the shards' answers to a planned scatter query into the one answer a single Postgres would give.
//
// Fed message by message by the session (RowDescription, DataRow, end of each shard's rows),
// it writes the client's RowDescription and DataRows through a sink.
//
// - stream plans: without ORDER BY rows pass through as they come (hidden columns cut off).
//   With ORDER BY every shard's rows wait in a per-shard queue and the smallest head goes out
//   once every unfinished shard has a head (k-way merge). A queue longer than QUEUE_HIGH rows
//   pauses that shard's socket until it is down to QUEUE_LOW, so memory stays bounded by
//   shards × QUEUE_HIGH rows plus one socket chunk however many rows the shards send; the
//   client's own back-pressure pauses every shard (session). After LIMIT rows the rest is
//   dropped as it arrives.
// - aggregate plans: partial rows are folded into a hash table of groups (memory bounded by the
//   number of groups; values are copied out of the socket chunks), then HAVING, DISTINCT,
//   ORDER BY and OFFSET/LIMIT run over the merged groups when every shard is done.
//
// Errors are thrown as ScatterError (0A000 for what cannot be merged); the merger checks types
// when the RowDescription arrives and text collations on the first compared values, both before
// any row is written, so a refusal never follows partial output of a merge.
import type { RowDescriptionField } from '../protocol/backend-scanner.js';
import { parseDataRow, parseRowDescription } from '../protocol/backend-scanner.js';
import * as bw from '../protocol/backend-writer.js';
import type { AggregateMerge, AggSpec, HavingExpr, HavingOperand, ScatterPlan, SortSpec, StreamMerge, ValueRef } from './planner.js';
import {
  addDecimal, checkGroupable, checkOrderable, compareDecimal, compareKeys, decimalToIntText, divideForAvg, formatDecimal, formatFloat,
  groupKey, isCollatable, isFloatType, isIntType, isNumberType, Oid, parseDecimal, ScatterError, sortKey, type Decimal, type SortKeyValue,
} from './values.js';

/** Pause a shard whose queue holds this many rows… */
export const QUEUE_HIGH = 2048;
/** …and resume it when the queue is down to this many. */
export const QUEUE_LOW = 256;

export interface MergerSink {
  write(buf: Buffer): void;
  pause(shard: number): void;
  resume(shard: number): void;
}

interface QueuedRow {
  buf: Buffer;
  start: number;
  end: number;
  keys: (SortKeyValue | null)[] | null;
}

interface ShardState {
  queue: QueuedRow[];
  head: number;
  done: boolean;
  paused: boolean;
}

type Value = Buffer | null;

interface AggState {
  count: bigint;
  int: bigint | null;
  dec: Decimal | null;
  float: number | null;
  raw: Buffer | null;
  key: SortKeyValue | null;
}

interface Group {
  first: Value[];
  acc: AggState[];
}

function collationError(): ScatterError {
  return new ScatterError('SCATTER_COLLATION', 'text ordered under a non-C collation cannot be merged across shards by pgtide', {
    sqlstate: '0A000',
    detail: "the proxy merges shard results by byte order, which only the C collations (C, POSIX, C.UTF-8, ucs_basic) share with Postgres",
    hint: 'add COLLATE "C" to the ORDER BY / min() / max() expression, or create the column with a C collation',
  });
}

function flagOk(v: Value): boolean {
  return v !== null && v.length === 1 && v[0] === 0x74; // 't'
}

export class ScatterMerger {
  /** DataRows written to the client. */
  rows = 0;
  private fields: RowDescriptionField[] | null = null;
  private clientDesc: Buffer | null = null;
  private readonly shards: ShardState[];
  private visible = 0;
  private skip: number;
  private limitLeft: number;
  private readonly seen: Set<string> | null;
  // stream
  private sortCols: { col: number; oid: number; coll: number | null; desc: boolean; nullsFirst: boolean }[] = [];
  // aggregate
  private readonly groups = new Map<string, Group>();
  private outFields: RowDescriptionField[] = [];
  private aggTypes: number[] = [];

  constructor(readonly plan: ScatterPlan, shardCount: number, private readonly sink: MergerSink) {
    this.shards = Array.from({ length: shardCount }, () => ({ queue: [], head: 0, done: false, paused: false }));
    const m = plan.merge;
    this.skip = m.offset;
    this.limitLeft = m.limit ?? Infinity;
    this.seen = m.distinct ? new Set() : null;
  }

  /** A shard's RowDescription → the client's (the first one decides; every shard sends the same shape). */
  describe(buf: Buffer, start: number, end: number): Buffer {
    if (this.clientDesc) return this.clientDesc;
    const fields = parseRowDescription(buf, start, end);
    this.fields = fields;
    const m = this.plan.merge;
    this.visible = fields.length - m.hidden;
    this.clientDesc = m.mode === 'stream' ? this.describeStream(m, fields, buf, start, end) : this.describeAggregate(m, fields);
    return this.clientDesc;
  }

  private describeStream(m: StreamMerge, fields: RowDescriptionField[], buf: Buffer, start: number, end: number): Buffer {
    this.sortCols = m.sort.map((s) => {
      const col = 'visible' in s.ref ? s.ref.visible : this.visible + s.ref.hidden;
      const f = fields[col];
      if (!f || col >= ('visible' in s.ref ? this.visible : fields.length)) throw new ScatterError('SCATTER_PLAN', `ORDER BY position ${col + 1} is not in the select list`, { sqlstate: '42P10' });
      if (f.format !== 0) throw new ScatterError('SCATTER_BINARY', 'a merged ORDER BY needs text result format', { sqlstate: '0A000', hint: 'request text results for cross-shard queries' });
      checkOrderable(f.typeOid, 'ORDER BY');
      return { col, oid: f.typeOid, coll: s.coll === null ? null : this.visible + s.coll, desc: s.desc, nullsFirst: s.nullsFirst };
    });
    if (m.distinct) {
      for (const f of fields.slice(0, this.visible)) {
        if (f.format !== 0) throw new ScatterError('SCATTER_BINARY', 'a merged DISTINCT needs text result format', { sqlstate: '0A000' });
        checkGroupable(f.typeOid, 'DISTINCT');
      }
    }
    if (m.hidden === 0) return Buffer.from(buf.subarray(start, end));
    return bw.rowDescription(fields.slice(0, this.visible).map((f) => ({ ...f, format: f.format as 0 | 1 })));
  }

  private describeAggregate(m: AggregateMerge, fields: RowDescriptionField[]): Buffer {
    if (this.visible !== m.columns) throw new ScatterError('SCATTER_PLAN', `shards returned ${this.visible} columns where ${m.columns} were planned`, { sqlstate: 'XX000' });
    for (const f of fields) if (f.format !== 0) throw new ScatterError('SCATTER_BINARY', 'a merged aggregate needs text result format', { sqlstate: '0A000', hint: 'request text results for cross-shard queries' });
    for (const c of m.groupCols) checkGroupable(fields[c]!.typeOid, 'GROUP BY');
    this.aggTypes = m.aggs.map((a) => this.aggType(a, fields[a.col]!.typeOid));
    this.outFields = m.outputs.map((o) => {
      if (o.ref.k === 'col') return fields[o.ref.col]!;
      const a = m.aggs[o.ref.agg]!;
      const src = fields[a.col]!;
      let oid = this.aggTypes[o.ref.agg]!;
      if (o.cast) {
        if (oid !== Oid.Int8 && oid !== Oid.Numeric) throw new ScatterError('SCATTER_CAST', `cannot merge a cast of ${a.text} of type oid ${oid}`, { sqlstate: '0A000' });
        oid = o.cast.oid;
      }
      const size = oid === Oid.Int8 || oid === Oid.Float8 ? 8 : oid === Oid.Int4 ? 4 : oid === Oid.Int2 ? 2 : oid === Oid.Float4 ? 4 : src.typeSize;
      return { ...src, typeOid: oid, typeSize: oid === Oid.Numeric ? -1 : size, typeMod: oid === src.typeOid ? src.typeMod : -1 };
    });
    for (const s of m.sort) checkOrderable(this.refType(s.ref), 'ORDER BY');
    if (m.distinct) for (const f of this.outFields) checkGroupable(f.typeOid, 'DISTINCT');
    return bw.rowDescription(this.outFields.map((f) => ({ ...f, format: 0 })));
  }

  /** The type of an aggregate's merged value, from its partial's type. */
  private aggType(a: AggSpec, partial: number): number {
    const bad = () => new ScatterError('SCATTER_TYPE', `${a.text} over a value of type oid ${partial} cannot be merged across shards by pgtide`, { sqlstate: '0A000', hint: a.fn === 'avg' && partial === Oid.Float4 ? 'cast the argument to double precision' : undefined });
    switch (a.fn) {
      case 'count':
        return Oid.Int8;
      case 'sum':
        if (partial === Oid.Int8 || partial === Oid.Numeric || isFloatType(partial)) return partial;
        throw bad();
      case 'avg':
        if (partial === Oid.Int8 || partial === Oid.Numeric) return Oid.Numeric;
        if (partial === Oid.Float8) return Oid.Float8;
        throw bad();
      default:
        checkOrderable(partial, a.fn === 'min' ? 'min()' : 'max()');
        return partial;
    }
  }

  private refType(r: ValueRef): number {
    return r.k === 'agg' ? this.aggTypes[r.agg]! : this.fields![r.col]!.typeOid;
  }

  /** One DataRow from shard `shard`. */
  row(shard: number, buf: Buffer, start: number, end: number): void {
    const m = this.plan.merge;
    if (m.mode === 'aggregate') {
      this.fold(m, parseDataRow(buf, start, end));
      return;
    }
    if (this.limitLeft <= 0) return;
    if (this.sortCols.length === 0) {
      this.emit(buf, start, end);
      return;
    }
    const s = this.shards[shard]!;
    s.queue.push({ buf, start, end, keys: null });
    if (!s.paused && s.queue.length - s.head >= QUEUE_HIGH) {
      s.paused = true;
      this.sink.pause(shard);
    }
    this.drain();
  }

  /** Shard `shard` sent all its rows. */
  shardDone(shard: number): void {
    this.shards[shard]!.done = true;
    if (this.plan.merge.mode === 'stream') this.drain();
  }

  /** Every shard is done: emit what is left (aggregate plans emit everything here). */
  finish(): void {
    const m = this.plan.merge;
    for (const s of this.shards) s.done = true;
    if (m.mode === 'stream') this.drain();
    else this.emitGroups(m);
  }

  /** Shard indexes the merger has paused (the session must not resume them on client drain). */
  isPaused(shard: number): boolean {
    return this.shards[shard]?.paused ?? false;
  }

  // ---- stream ----

  private keysOf(r: QueuedRow): (SortKeyValue | null)[] {
    if (r.keys) return r.keys;
    const vals = parseDataRow(r.buf, r.start, r.end);
    r.keys = this.sortCols.map((c) => {
      const v = vals[c.col]!;
      if (v === null) return null;
      if (isCollatable(c.oid) && (c.coll === null || !flagOk(vals[c.coll]!))) throw collationError();
      return sortKey(c.oid, v);
    });
    return r.keys;
  }

  private compareRows(a: QueuedRow, b: QueuedRow): number {
    const ka = this.keysOf(a);
    const kb = this.keysOf(b);
    for (let i = 0; i < this.sortCols.length; i++) {
      const c = this.sortCols[i]!;
      const x = ka[i]!;
      const y = kb[i]!;
      let r: number;
      if (x === null || y === null) r = x === y ? 0 : (x === null) === c.nullsFirst ? -1 : 1;
      else r = c.desc ? -compareKeys(x, y) : compareKeys(x, y);
      if (r !== 0) return r;
    }
    return 0;
  }

  private drain(): void {
    const shards = this.shards;
    while (this.limitLeft > 0) {
      let best = -1;
      for (let i = 0; i < shards.length; i++) {
        const s = shards[i]!;
        if (s.head >= s.queue.length) {
          if (!s.done) return; // wait for this shard's next row
          continue;
        }
        if (best < 0) {
          best = i;
          // Check every head as it arrives (collation), not only when compared.
          this.keysOf(s.queue[s.head]!);
        } else if (this.compareRows(s.queue[s.head]!, shards[best]!.queue[shards[best]!.head]!) < 0) best = i;
      }
      if (best < 0) return;
      const s = shards[best]!;
      const r = s.queue[s.head]!;
      s.queue[s.head++] = undefined as unknown as QueuedRow;
      if (s.head >= 1024 && s.head * 2 >= s.queue.length) {
        s.queue = s.queue.slice(s.head);
        s.head = 0;
      }
      if (s.paused && s.queue.length - s.head <= QUEUE_LOW) {
        s.paused = false;
        this.sink.resume(best);
      }
      this.emit(r.buf, r.start, r.end);
    }
    this.stopAtLimit();
  }

  /** LIMIT reached: nothing queued matters any more; let paused shards run out. */
  private stopAtLimit(): void {
    for (let i = 0; i < this.shards.length; i++) {
      const s = this.shards[i]!;
      s.queue = [];
      s.head = 0;
      if (s.paused) {
        s.paused = false;
        this.sink.resume(i);
      }
    }
  }

  private emit(buf: Buffer, start: number, end: number): void {
    if (this.limitLeft <= 0) return;
    const hidden = this.plan.merge.hidden;
    if (this.seen) {
      const vals = parseDataRow(buf, start, end);
      const key = this.distinctKey(vals.slice(0, this.visible), this.fields!.map((f) => f.typeOid));
      if (this.seen.has(key)) return;
      this.seen.add(key);
    }
    if (this.skip > 0) {
      this.skip--;
      return;
    }
    this.limitLeft--;
    this.rows++;
    if (hidden === 0) {
      this.sink.write(buf.subarray(start, end));
      return;
    }
    // Hidden columns are last: keep the prefix of the visible ones, fix count and length.
    let p = start + 7;
    for (let i = 0; i < this.visible; i++) {
      const len = buf.readInt32BE(p);
      p += 4 + (len > 0 ? len : 0);
    }
    const out = Buffer.allocUnsafe(p - start);
    buf.copy(out, 7, start + 7, p);
    out[0] = 0x44;
    out.writeInt32BE(out.length - 1, 1);
    out.writeInt16BE(this.visible, 5);
    this.sink.write(out);
  }

  private distinctKey(vals: Value[], oids: number[]): string {
    let key = '';
    for (let i = 0; i < vals.length; i++) {
      const k = groupKey(oids[i]!, vals[i]!);
      key += `${k.length}:${k}`;
    }
    return key;
  }

  // ---- aggregate ----

  private fold(m: AggregateMerge, vals: Value[]): void {
    const fields = this.fields!;
    let key = '';
    for (const c of m.groupCols) {
      const k = groupKey(fields[c]!.typeOid, vals[c]!);
      key += `${k.length}:${k}`;
    }
    let g = this.groups.get(key);
    if (!g) {
      // Copy out of the socket chunk: a kept subarray would pin the whole chunk.
      g = { first: vals.map((v) => (v === null ? null : Buffer.from(v))), acc: m.aggs.map(() => ({ count: 0n, int: null, dec: null, float: null, raw: null, key: null })) };
      this.groups.set(key, g);
    }
    for (let i = 0; i < m.aggs.length; i++) this.foldAgg(m.aggs[i]!, g.acc[i]!, vals, fields[m.aggs[i]!.col]!.typeOid);
  }

  private foldAgg(a: AggSpec, st: AggState, vals: Value[], oid: number): void {
    const v = vals[a.col]!;
    switch (a.fn) {
      case 'count':
        if (v !== null) st.count += BigInt(v.toString('latin1'));
        return;
      case 'avg':
      case 'sum': {
        if (a.fn === 'avg') st.count += BigInt(vals[a.countCol!]?.toString('latin1') ?? '0');
        if (v === null) return;
        const s = v.toString('latin1');
        if (oid === Oid.Int8) st.int = (st.int ?? 0n) + BigInt(s);
        else if (oid === Oid.Numeric) st.dec = st.dec ? addDecimal(st.dec, parseDecimal(s)) : parseDecimal(s);
        else if (oid === Oid.Float4) st.float = Math.fround((st.float ?? 0) + Number(s));
        else st.float = (st.float ?? 0) + Number(s);
        return;
      }
      default: {
        if (v === null) return;
        if (isCollatable(oid) && (a.coll === null || !flagOk(vals[a.coll]!))) throw collationError();
        const k = sortKey(oid, v);
        if (st.key === null || (a.fn === 'min' ? compareKeys(k, st.key) < 0 : compareKeys(k, st.key) > 0)) {
          st.key = k;
          st.raw = Buffer.from(v);
        }
      }
    }
  }

  /** The merged value of aggregate `i` of a group, as text. */
  private aggValue(m: AggregateMerge, i: number, st: AggState): Value {
    const a = m.aggs[i]!;
    const partial = this.fields![a.col]!.typeOid;
    switch (a.fn) {
      case 'count':
        return Buffer.from(st.count.toString());
      case 'min': case 'max':
        return st.raw;
      case 'sum':
        if (partial === Oid.Int8) return st.int === null ? null : Buffer.from(st.int.toString());
        if (partial === Oid.Numeric) return st.dec === null ? null : Buffer.from(formatDecimal(st.dec));
        return st.float === null ? null : Buffer.from(formatFloat(st.float, partial === Oid.Float4));
      case 'avg':
        if (st.count === 0n) return null;
        if (partial === Oid.Float8) return Buffer.from(formatFloat((st.float ?? 0) / Number(st.count)));
        return Buffer.from(formatDecimal(divideForAvg(partial === Oid.Int8 ? { v: st.int ?? 0n, scale: 0 } : st.dec ?? { v: 0n, scale: 0 }, st.count)));
    }
  }

  private emitGroups(m: AggregateMerge): void {
    const fields = this.fields;
    if (!fields) return; // no shard described anything (every shard failed first)
    type Out = { out: Value[]; sort: (SortKeyValue | null)[] };
    const rows: Out[] = [];
    const sortTypes = m.sort.map((s) => this.refType(s.ref));
    for (const g of this.groups.values()) {
      const aggVals = new Map<number, Value>();
      const get = (r: ValueRef): Value => {
        if (r.k === 'col') return g.first[r.col]!;
        if (!aggVals.has(r.agg)) aggVals.set(r.agg, this.aggValue(m, r.agg, g.acc[r.agg]!));
        return aggVals.get(r.agg)!;
      };
      if (m.having && this.evalHaving(m.having, g, get) !== true) continue;
      const out = m.outputs.map((o) => {
        const v = get(o.ref);
        if (!o.cast || v === null || o.cast.bits === 0) return v;
        return Buffer.from(decimalToIntText(parseDecimal(v.toString('latin1')), o.cast.bits));
      });
      const sort = m.sort.map((s, i) => {
        const v = get(s.ref);
        if (v === null) return null;
        if (isCollatable(sortTypes[i]!)) {
          const flag = s.ref.k === 'agg' ? m.aggs[s.ref.agg]!.coll : s.coll;
          if (flag === null || (s.ref.k === 'col' && !flagOk(g.first[flag]!))) throw collationError();
        }
        return sortKey(sortTypes[i]!, v);
      });
      rows.push({ out, sort });
    }
    if (m.sort.length > 0) {
      rows.sort((a, b) => {
        for (let i = 0; i < m.sort.length; i++) {
          const s = m.sort[i]!;
          const x = a.sort[i]!;
          const y = b.sort[i]!;
          let r: number;
          if (x === null || y === null) r = x === y ? 0 : (x === null) === s.nullsFirst ? -1 : 1;
          else r = s.desc ? -compareKeys(x, y) : compareKeys(x, y);
          if (r !== 0) return r;
        }
        return 0;
      });
    }
    const oids = this.outFields.map((f) => f.typeOid);
    for (const r of rows) {
      if (this.limitLeft <= 0) break;
      if (this.seen) {
        const key = this.distinctKey(r.out, oids);
        if (this.seen.has(key)) continue;
        this.seen.add(key);
      }
      if (this.skip > 0) {
        this.skip--;
        continue;
      }
      this.limitLeft--;
      this.rows++;
      this.sink.write(bw.dataRow(r.out));
    }
    this.groups.clear();
  }

  // ---- HAVING (three-valued) ----

  private evalHaving(e: HavingExpr, g: Group, get: (r: ValueRef) => Value): boolean | null {
    switch (e.k) {
      case 'and': {
        let out: boolean | null = true;
        for (const a of e.args) {
          const v = this.evalHaving(a, g, get);
          if (v === false) return false;
          if (v === null) out = null;
        }
        return out;
      }
      case 'or': {
        let out: boolean | null = false;
        for (const a of e.args) {
          const v = this.evalHaving(a, g, get);
          if (v === true) return true;
          if (v === null) out = null;
        }
        return out;
      }
      case 'not': {
        const v = this.evalHaving(e.arg, g, get);
        return v === null ? null : !v;
      }
      case 'null': {
        const v = this.operand(e.arg, get).value;
        return (v === null) !== e.not;
      }
      case 'cmp': {
        const l = this.operand(e.l, get);
        const r = this.operand(e.r, get);
        if (l.value === null || r.value === null) return null;
        const c = this.compareOperands(l, r, e.op === '=' || e.op === '<>', g);
        switch (e.op) {
          case '=': return c === 0;
          case '<>': return c !== 0;
          case '<': return c < 0;
          case '<=': return c <= 0;
          case '>': return c > 0;
          default: return c >= 0;
        }
      }
    }
  }

  private operand(o: HavingOperand, get: (r: ValueRef) => Value): { value: Value; oid: number | null; numericConst: boolean; coll: number | null; agg: AggSpec | null } {
    if (o.k === 'const') return { value: o.value === null ? null : Buffer.from(o.value), oid: null, numericConst: o.numeric, coll: null, agg: null };
    const m = this.plan.merge as AggregateMerge;
    return { value: get(o.ref), oid: this.refType(o.ref), numericConst: false, coll: o.coll, agg: o.ref.k === 'agg' ? m.aggs[o.ref.agg]! : null };
  }

  private compareOperands(l: ReturnType<ScatterMerger['operand']>, r: ReturnType<ScatterMerger['operand']>, equality: boolean, g: Group): number {
    const lt = l.oid;
    const rt = r.oid;
    const numeric = (x: typeof l) => (x.oid === null ? x.numericConst : isNumberType(x.oid));
    if (numeric(l) && numeric(r)) {
      if ((lt !== null && isFloatType(lt)) || (rt !== null && isFloatType(rt))) return compareKeys(Number(l.value!.toString('latin1')), Number(r.value!.toString('latin1')));
      if (lt !== null && rt !== null && isIntType(lt) && isIntType(rt)) return compareKeys(BigInt(l.value!.toString('latin1')), BigInt(r.value!.toString('latin1')));
      return compareDecimal(parseDecimal(l.value!.toString('latin1')), parseDecimal(r.value!.toString('latin1')));
    }
    const oid = lt ?? rt;
    if (oid === null) throw new ScatterError('SCATTER_HAVING', 'HAVING compares two constants', { sqlstate: '0A000' });
    if (lt !== null && rt !== null && lt !== rt && !(isCollatable(lt) && isCollatable(rt))) {
      throw new ScatterError('SCATTER_HAVING', `HAVING compares values of types oid ${lt} and ${rt}`, { sqlstate: '0A000' });
    }
    checkOrderable(oid, 'HAVING');
    if (!equality && isCollatable(oid)) {
      for (const x of [l, r]) {
        if (x.oid === null) continue;
        const flag = x.agg ? x.agg.coll : x.coll;
        if (flag === null || (!x.agg && !flagOk(g.first[flag]!))) throw collationError();
      }
    }
    return compareKeys(sortKey(oid, l.value!), sortKey(oid, r.value!));
  }
}

export type { SortSpec };
