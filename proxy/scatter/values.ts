// Postgres values in text format, by type OID: exact comparison, grouping keys, decimal arithmetic and float output as Postgres prints them.
//
// The merger never converts numbers through JS floats unless Postgres itself computes in
// float8: integers compare as numbers or bigints, numerics as scaled bigints (exact), and avg
// over integers/numerics divides with Postgres's own result-scale rule (select_div_scale) and
// rounding (half away from zero), so the digits match a single server's answer.
// Text compares bytewise, which is the C collation's order; callers must make sure the shards'
// collation is a byte-order one (see merger.ts).
import { PgtideError } from '../../config/errors.js';

export class ScatterError extends PgtideError {}

export const enum Oid {
  Bool = 16, Bytea = 17, Char = 18, Name = 19, Int8 = 20, Int2 = 21, Int4 = 23, Text = 25, Oid = 26,
  Float4 = 700, Float8 = 701, Cidr = 650, Inet = 869, Bpchar = 1042, Varchar = 1043, Date = 1082, Time = 1083,
  Timestamp = 1114, Timestamptz = 1184, Interval = 1186, Numeric = 1700, Uuid = 2950,
}

export function isIntType(oid: number): boolean {
  return oid === Oid.Int2 || oid === Oid.Int4 || oid === Oid.Int8 || oid === Oid.Oid;
}
export function isFloatType(oid: number): boolean {
  return oid === Oid.Float4 || oid === Oid.Float8;
}
export function isNumberType(oid: number): boolean {
  return isIntType(oid) || isFloatType(oid) || oid === Oid.Numeric;
}
/** Types whose order depends on the collation. */
export function isCollatable(oid: number): boolean {
  return oid === Oid.Text || oid === Oid.Varchar || oid === Oid.Bpchar;
}

const ORDERABLE = new Set<number>([
  Oid.Bool, Oid.Bytea, Oid.Char, Oid.Name, Oid.Int8, Oid.Int2, Oid.Int4, Oid.Text, Oid.Oid, Oid.Float4, Oid.Float8,
  Oid.Bpchar, Oid.Varchar, Oid.Date, Oid.Time, Oid.Timestamp, Oid.Timestamptz, Oid.Numeric, Oid.Uuid,
]);
/** Types whose text output is canonical, so equal values have equal (normalized) text. */
const GROUPABLE = new Set<number>([...ORDERABLE, Oid.Inet, Oid.Cidr]);

export function checkOrderable(oid: number, what: string): void {
  if (!ORDERABLE.has(oid)) throw new ScatterError('SCATTER_TYPE', `${what} on a value of type oid ${oid} cannot be merged across shards by pgtide`, { sqlstate: '0A000', hint: 'order by a column of a built-in numeric, text, date/time, boolean or uuid type' });
}
export function checkGroupable(oid: number, what: string): void {
  if (!GROUPABLE.has(oid)) throw new ScatterError('SCATTER_TYPE', `${what} on a value of type oid ${oid} cannot be merged across shards by pgtide`, { sqlstate: '0A000', hint: 'group by a column of a built-in numeric, text, date/time, boolean or uuid type' });
}

// ---- exact decimals ----

/** v × 10^-scale; `special` for NaN and ±Infinity (numeric has them since PG 14). */
export interface Decimal {
  v: bigint;
  scale: number;
  special?: 'NaN' | 'Infinity' | '-Infinity';
}

const POW10: bigint[] = [1n];
export function pow10(n: number): bigint {
  while (POW10.length <= n) POW10.push(POW10[POW10.length - 1]! * 10n);
  return POW10[n]!;
}

export function parseDecimal(s: string): Decimal {
  if (s === 'NaN' || s === 'Infinity' || s === '-Infinity') return { v: 0n, scale: 0, special: s };
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new ScatterError('SCATTER_VALUE', `invalid numeric value "${s}" from a shard`, { sqlstate: '22P02' });
  let digits = (m[2] ?? '') + (m[3] ?? '');
  let scale = (m[3] ?? '').length - Number(m[4] ?? 0);
  if (scale < 0) {
    digits += '0'.repeat(-scale);
    scale = 0;
  }
  const v = BigInt(digits || '0');
  return { v: m[1] === '-' ? -v : v, scale };
}

export function formatDecimal(d: Decimal): string {
  if (d.special) return d.special;
  const neg = d.v < 0n;
  let s = (neg ? -d.v : d.v).toString();
  if (d.scale > 0) {
    if (s.length <= d.scale) s = '0'.repeat(d.scale - s.length + 1) + s;
    s = `${s.slice(0, s.length - d.scale)}.${s.slice(s.length - d.scale)}`;
  }
  return neg ? `-${s}` : s;
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  const s = Math.max(a.scale, b.scale);
  return [a.v * pow10(s - a.scale), b.v * pow10(s - b.scale), s];
}

function specialRank(d: Decimal): number {
  return d.special === '-Infinity' ? -1 : d.special === 'Infinity' ? 1 : d.special === 'NaN' ? 2 : 0;
}

export function compareDecimal(a: Decimal, b: Decimal): number {
  const ra = specialRank(a);
  const rb = specialRank(b);
  if (ra !== 0 || rb !== 0) return ra === rb ? 0 : ra < rb ? -1 : 1;
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Postgres numeric addition: the result keeps the larger display scale. */
export function addDecimal(a: Decimal, b: Decimal): Decimal {
  if (a.special || b.special) {
    if (a.special === 'NaN' || b.special === 'NaN') return { v: 0n, scale: 0, special: 'NaN' };
    if (a.special && b.special && a.special !== b.special) return { v: 0n, scale: 0, special: 'NaN' };
    return { v: 0n, scale: 0, special: (a.special ?? b.special)! };
  }
  const [x, y, s] = align(a, b);
  return { v: x + y, scale: s };
}

/** NBASE (10000) weight and first digit of a decimal, as Postgres's NumericVar has them. */
function weightAndFirst(d: Decimal): [number, bigint] {
  const abs = d.v < 0n ? -d.v : d.v;
  if (abs === 0n) return [0, 0n];
  const e10 = abs.toString().length - d.scale - 1;
  const w = Math.floor(e10 / 4);
  const shift = -d.scale - 4 * w;
  const first = shift >= 0 ? abs * pow10(shift) : abs / pow10(-shift);
  return [w, first];
}

/**
 * numeric_div(sum, n) as Postgres computes avg: result scale by select_div_scale (at least 16
 * significant digits, never less than either input's scale), rounded half away from zero.
 */
export function divideForAvg(sum: Decimal, n: bigint): Decimal {
  if (sum.special) return sum.special === 'NaN' ? sum : { ...sum };
  const [w1, f1] = weightAndFirst(sum);
  const [w2, f2] = weightAndFirst({ v: n, scale: 0 });
  let qweight = w1 - w2;
  if (f1 < f2) qweight--;
  let rscale = 16 - qweight * 4;
  rscale = Math.min(Math.max(rscale, sum.scale, 0), 1000);
  const neg = sum.v < 0n;
  const num = (neg ? -sum.v : sum.v) * pow10(rscale - sum.scale);
  let q = num / n;
  if ((num % n) * 2n >= n) q++;
  return { v: neg ? -q : q, scale: rscale };
}

/** A decimal as an integer of a cast target, rounding half away from zero like numeric → int. */
export function decimalToIntText(d: Decimal, bits: 16 | 32 | 64): string {
  if (d.special) throw new ScatterError('SCATTER_CAST', `cannot convert ${d.special} to integer`, { sqlstate: '0A000' });
  const neg = d.v < 0n;
  const abs = neg ? -d.v : d.v;
  const p = pow10(d.scale);
  let q = abs / p;
  if ((abs % p) * 2n >= p) q++;
  const v = neg ? -q : q;
  const lim = 1n << BigInt(bits - 1);
  if (v < -lim || v >= lim) throw new ScatterError('SCATTER_OVERFLOW', bits === 16 ? 'smallint out of range' : bits === 32 ? 'integer out of range' : 'bigint out of range', { sqlstate: '22003' });
  return v.toString();
}

// ---- floats as Postgres prints them ----

/** float8out / float4out with extra_float_digits ≥ 1 (the default): shortest exact digits, %g-like thresholds. */
export function formatFloat(v: number, float4 = false): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  let exp: string;
  if (float4) {
    exp = v.toExponential(8);
    for (let p = 1; p <= 9; p++) {
      const s = v.toExponential(p - 1);
      if (Math.fround(Number(s)) === v) {
        exp = s;
        break;
      }
    }
  } else {
    exp = v.toExponential();
  }
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exp)!;
  const sign = m[1]!;
  const digits = m[2]! + (m[3] ?? '');
  const e = Number(m[4]);
  const maxFixed = float4 ? 6 : 15;
  if (e >= -4 && e < maxFixed) {
    if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
    if (digits.length <= e + 1) return sign + digits + '0'.repeat(e + 1 - digits.length);
    return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const ae = Math.abs(e);
  return `${sign}${mant}e${e < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
}

// ---- comparison keys ----

export type SortKeyValue = number | bigint | Decimal | Buffer | [number, string];

const DATE_RE = /^(\d+)-(\d\d)-(\d\d)(?: (\d\d:\d\d:\d\d(?:\.\d+)?))?( BC)?$/;
const TSTZ_RE = /^(\d+)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/** date/timestamp text (DateStyle ISO) → sortable [signed year, rest]. */
function dateKey(s: string): [number, string] {
  if (s === 'infinity') return [Infinity, ''];
  if (s === '-infinity') return [-Infinity, ''];
  const m = DATE_RE.exec(s);
  if (!m) throw new ScatterError('SCATTER_VALUE', `cannot compare date/time value "${s}" (is DateStyle ISO?)`, { sqlstate: '0A000' });
  // Astronomical year: 1 BC is year 0; within a year the rest sorts as written.
  const year = m[5] ? 1 - Number(m[1]) : Number(m[1]);
  const rest = `${m[2]}-${m[3]} ${m[4] ?? ''}`;
  return [year, rest];
}

/** timestamptz text → [epoch seconds, fraction] in UTC. */
function tstzKey(s: string): [number, string] {
  if (s === 'infinity') return [Infinity, ''];
  if (s === '-infinity') return [-Infinity, ''];
  const m = TSTZ_RE.exec(s);
  if (!m || m[12]) throw new ScatterError('SCATTER_VALUE', `cannot compare timestamptz value "${s}" (is DateStyle ISO?)`, { sqlstate: '0A000' });
  const off = (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) * (m[8] === '-' ? -1 : 1);
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]));
  const secs = d.getTime() / 1000 - off;
  return [secs, (m[7] ?? '.').slice(1).padEnd(6, '0')];
}

function trimSpaces(b: Buffer): Buffer {
  let e = b.length;
  while (e > 0 && b[e - 1] === 0x20) e--;
  return e === b.length ? b : b.subarray(0, e);
}

/** Decode a non-null text value into something compareKeys can order. */
export function sortKey(oid: number, raw: Buffer): SortKeyValue {
  switch (oid) {
    case Oid.Int2: case Oid.Int4: case Oid.Oid:
      return Number(raw.toString('latin1'));
    case Oid.Int8:
      return raw.length <= 15 ? Number(raw.toString('latin1')) : BigInt(raw.toString('latin1'));
    case Oid.Float4: case Oid.Float8:
      return Number(raw.toString('latin1'));
    case Oid.Numeric:
      return parseDecimal(raw.toString('latin1'));
    case Oid.Bpchar:
      return trimSpaces(raw);
    case Oid.Date: case Oid.Timestamp:
      return dateKey(raw.toString('latin1'));
    case Oid.Timestamptz:
      return tstzKey(raw.toString('latin1'));
    default:
      return raw;
  }
}

/** Order of two decoded keys of the same type (NaN sorts above every number, as in Postgres). */
export function compareKeys(a: SortKeyValue, b: SortKeyValue): number {
  if (typeof a === 'number' || typeof a === 'bigint') {
    const x = a as number;
    const y = b as number;
    if (x !== x) return y !== y ? 0 : 1; // NaN
    if (y !== y) return -1;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (Buffer.isBuffer(a)) return Buffer.compare(a, b as Buffer);
  if (Array.isArray(a)) {
    const y = b as [number, string];
    return a[0] < y[0] ? -1 : a[0] > y[0] ? 1 : a[1] < y[1] ? -1 : a[1] > y[1] ? 1 : 0;
  }
  return compareDecimal(a, b as Decimal);
}

/** A string equal for values Postgres considers equal (for GROUP BY and DISTINCT hashing). */
export function groupKey(oid: number, raw: Buffer | null): string {
  if (raw === null) return '\u0000N';
  switch (oid) {
    case Oid.Numeric: {
      const d = parseDecimal(raw.toString('latin1'));
      if (d.special) return d.special;
      let { v, scale } = d;
      while (scale > 0 && v % 10n === 0n) {
        v /= 10n;
        scale--;
      }
      return `${v}e${scale}`;
    }
    case Oid.Float4: case Oid.Float8: {
      const n = Number(raw.toString('latin1'));
      return n === 0 ? '0' : String(n);
    }
    case Oid.Bpchar:
      return trimSpaces(raw).toString('latin1');
    case Oid.Int8: case Oid.Int2: case Oid.Int4:
      return raw.toString('latin1');
    default:
      return raw.toString('latin1');
  }
}
