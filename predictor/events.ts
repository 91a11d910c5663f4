// Scheduled events: the admin syntax, the HTTP feed, and multipliers learned from past occurrences.
//
// An event scales load during [start, start + duration). Its multiplier is learned from the past
// occurrences of events with the same name: the ratio of actual load to a baseline during each
// occurrence, where the baseline is the median of the same phase one, two and three long seasons
// earlier (occurrences that overlap other events are skipped as baseline). The median ratio over
// occurrences is the multiplier. A learned multiplier wins over the user's EXPECT (which is only a
// prior for a name never seen), and the note says so. Before the models are fitted the past
// occurrences are divided by their multiplier, so a campaign is not mistaken for seasonality (a
// weekly naive forecast would otherwise repeat last week's campaign), and future occurrences are
// multiplied back onto the forecast.

import { request } from 'undici';
import { EventFeedError, EventSyntaxError } from './errors.js';
import { median } from './series.js';

export interface ScheduledEvent {
  name: string;
  /** Start, ms since the epoch (or a Date). */
  start: number | Date;
  durationMs: number;
  table?: string;
  /** Expected load multiplier given by the user (EXPECT); a learned one wins when history exists. */
  multiplier?: number;
}

/** How many long-season cycles back the baseline looks. */
const BASELINE_CYCLES = 3;
/** Largest multiplier believed from history or EXPECT (anything beyond is a data error). */
const MAX_MULTIPLIER = 100;

function eventStartMs(e: ScheduledEvent): number {
  return typeof e.start === 'number' ? e.start : e.start.getTime();
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

/** Parses "2 hours", "90 min", "1h30m", "01:30:00" or an ISO 8601 duration like "PT2H". */
export function parseDuration(text: string): number {
  const s = text.trim().toLowerCase();
  const hms = /^(\d+):(\d{1,2})(?::(\d{1,2}))?$/.exec(s);
  if (hms) return ((Number(hms[1]) * 60 + Number(hms[2])) * 60 + Number(hms[3] ?? 0)) * 1000;
  const iso = /^p(?:(\d+(?:\.\d+)?)w)?(?:(\d+(?:\.\d+)?)d)?(?:t(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?)?$/.exec(s);
  if (iso && s !== 'p' && s !== 'pt') {
    const [, w, d, h, m, sec] = iso;
    return Math.round((Number(w ?? 0) * 604800 + Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(sec ?? 0)) * 1000);
  }
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)/g;
  let total = 0, matched = '';
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const unit = DURATION_UNITS[m[2]!];
    if (unit === undefined) return NaN;
    total += Number(m[1]) * unit;
    matched += m[0];
  }
  if (matched.replace(/\s+/g, '') !== s.replace(/\s+/g, '')) return NaN;
  return matched ? Math.round(total) : NaN;
}

/**
 * Parses `SCHEDULE EVENT name AT 'ts' FOR 'duration' [ON table] [EXPECT multiplier]`
 * (keywords case-insensitive, optional trailing semicolon). Throws EventSyntaxError (42601).
 */
export function parseScheduleEvent(sql: string): ScheduledEvent {
  const src = sql.trim().replace(/;\s*$/, '');
  const tokens: { v: string; quoted: boolean }[] = [];
  const re = /\s*(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)"|([^\s']+))/y;
  let pos = 0;
  while (pos < src.length) {
    re.lastIndex = pos;
    const m = re.exec(src);
    if (!m) throw new EventSyntaxError(`unterminated quoted string at character ${pos + 1}`);
    if (m[1] !== undefined) tokens.push({ v: m[1].replace(/''/g, "'"), quoted: true });
    else if (m[2] !== undefined) tokens.push({ v: m[2].replace(/""/g, '"'), quoted: false });
    else tokens.push({ v: m[3]!, quoted: false });
    pos = re.lastIndex;
    if (/^\s*$/.test(src.slice(pos))) break;
  }
  const usage = "expected SCHEDULE EVENT name AT 'timestamp' FOR 'duration' [ON table] [EXPECT multiplier]";
  let i = 0;
  const kw = (word: string): boolean => {
    const t = tokens[i];
    if (t && !t.quoted && t.v.toUpperCase() === word) { i++; return true; }
    return false;
  };
  if (!kw('SCHEDULE') || !kw('EVENT')) throw new EventSyntaxError(`syntax error: ${usage}`);
  const nameTok = tokens[i++];
  if (!nameTok || nameTok.quoted || !/^[A-Za-z_][\w.-]*$/.test(nameTok.v) || ['AT', 'FOR'].includes(nameTok.v.toUpperCase())) {
    throw new EventSyntaxError(`syntax error: missing or invalid event name; ${usage}`);
  }
  if (!kw('AT')) throw new EventSyntaxError(`syntax error at or near "${tokens[i]?.v ?? 'end of input'}": expected AT; ${usage}`);
  const tsTok = tokens[i++];
  if (!tsTok || !tsTok.quoted) throw new EventSyntaxError("syntax error: AT needs a quoted timestamp, e.g. AT '2025-11-28 09:00:00+00'");
  const start = parseTimestamp(tsTok.v);
  if (Number.isNaN(start)) throw new EventSyntaxError(`invalid timestamp '${tsTok.v}' after AT`);
  if (!kw('FOR')) throw new EventSyntaxError(`syntax error at or near "${tokens[i]?.v ?? 'end of input'}": expected FOR 'duration'`);
  const durTok = tokens[i++];
  if (!durTok || !durTok.quoted) throw new EventSyntaxError("syntax error: FOR needs a quoted duration, e.g. FOR '6 hours'");
  const durationMs = parseDuration(durTok.v);
  if (!Number.isFinite(durationMs) || durationMs <= 0) throw new EventSyntaxError(`invalid duration '${durTok.v}' after FOR (use e.g. '6 hours', '90 min', 'PT2H')`);
  const ev: ScheduledEvent = { name: nameTok.v, start, durationMs };
  while (i < tokens.length) {
    if (kw('ON')) {
      const t = tokens[i++];
      if (!t || !/^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$/.test(t.v)) throw new EventSyntaxError('syntax error: ON needs a table name');
      if (ev.table !== undefined) throw new EventSyntaxError('ON given twice');
      ev.table = t.v.toLowerCase();
    } else if (kw('EXPECT')) {
      const t = tokens[i++];
      const v = t ? Number(t.v) : NaN;
      if (!t || !/^\d+(\.\d+)?$/.test(t.v.trim()) || !(v > 0) || v > MAX_MULTIPLIER) {
        throw new EventSyntaxError(`invalid EXPECT multiplier "${t?.v ?? ''}": a positive number up to ${MAX_MULTIPLIER}`);
      }
      if (ev.multiplier !== undefined) throw new EventSyntaxError('EXPECT given twice');
      ev.multiplier = v;
    } else {
      throw new EventSyntaxError(`syntax error at or near "${tokens[i]!.v}": expected ON table or EXPECT multiplier`);
    }
  }
  return ev;
}

/** ISO 8601 or Postgres-style "YYYY-MM-DD HH:MM[:SS][+TZ]"; no zone means UTC. NaN if invalid. */
export function parseTimestamp(text: string): number {
  let s = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return NaN;
  s = s.replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) s += 'T00:00:00';
  // "+00" or "+0530" zones as Postgres prints them.
  s = s.replace(/([+-]\d{2})$/, '$1:00').replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  if (!/(Z|[+-]\d{2}:\d{2})$/i.test(s)) s += 'Z';
  const v = Date.parse(s);
  return Number.isFinite(v) ? v : NaN;
}

/** Validates one feed entry into a ScheduledEvent (start may be ISO text or ms). */
export function toScheduledEvent(raw: unknown, where = 'event'): ScheduledEvent {
  if (typeof raw !== 'object' || raw === null) throw new EventFeedError(`${where}: not an object`);
  const r = raw as Record<string, unknown>;
  if (typeof r.name !== 'string' || r.name === '') throw new EventFeedError(`${where}: "name" must be a non-empty string`);
  const start = typeof r.start === 'number' ? r.start : typeof r.start === 'string' ? parseTimestamp(r.start) : NaN;
  if (!Number.isFinite(start)) throw new EventFeedError(`${where}: "start" must be an ISO timestamp or ms`);
  const dur = typeof r.durationMs === 'number' ? r.durationMs : typeof r.duration === 'string' ? parseDuration(r.duration) : NaN;
  if (!(dur > 0)) throw new EventFeedError(`${where}: "durationMs" must be a positive number`);
  const ev: ScheduledEvent = { name: r.name, start, durationMs: dur };
  if (r.table !== undefined && r.table !== null) {
    if (typeof r.table !== 'string') throw new EventFeedError(`${where}: "table" must be a string`);
    ev.table = r.table.toLowerCase();
  }
  if (r.multiplier !== undefined && r.multiplier !== null) {
    if (typeof r.multiplier !== 'number' || !(r.multiplier > 0) || r.multiplier > MAX_MULTIPLIER) {
      throw new EventFeedError(`${where}: "multiplier" must be a positive number up to ${MAX_MULTIPLIER}`);
    }
    ev.multiplier = r.multiplier;
  }
  return ev;
}

/** Fetches a JSON list of events from an HTTP feed with undici. Never hangs longer than timeoutMs. */
export async function fetchEventFeed(url: string, opts: { timeoutMs?: number } = {}): Promise<ScheduledEvent[]> {
  const timeout = opts.timeoutMs ?? 10_000;
  let body: unknown;
  try {
    const res = await request(url, { method: 'GET', headersTimeout: timeout, bodyTimeout: timeout, headers: { accept: 'application/json' } });
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump();
      throw new EventFeedError(`event feed ${url} answered HTTP ${res.statusCode}`);
    }
    body = await res.body.json();
  } catch (err) {
    if (err instanceof EventFeedError) throw err;
    throw new EventFeedError(`event feed ${url} failed: ${(err as Error).message}`);
  }
  const list = Array.isArray(body) ? body : (body as { events?: unknown }).events;
  if (!Array.isArray(list)) throw new EventFeedError(`event feed ${url} did not return a JSON list of events`);
  return list.map((e, i) => toScheduledEvent(e, `event feed entry ${i}`));
}

/** Multipliers by event name, with how they were obtained. */
export interface LearnedMultiplier {
  name: string;
  multiplier: number;
  occurrences: number;
  source: 'learned' | 'expected' | 'default';
}

/** Step indices [from, to) of an event on the series grid (clipped to [0, limit)). */
export function eventSteps(ev: ScheduledEvent, t0: number, stepMs: number, limit: number): [number, number] {
  const s = eventStartMs(ev);
  const from = Math.max(0, Math.floor((s - t0) / stepMs));
  const to = Math.min(limit, Math.ceil((s + ev.durationMs - t0) / stepMs));
  return [from, Math.max(from, to)];
}

/**
 * Learns per-name multipliers from occurrences inside the history y (grid t0, stepMs) using the
 * long season `season` (steps) for the baseline.
 */
export function learnMultipliers(
  y: ArrayLike<number>, t0: number, stepMs: number, events: readonly ScheduledEvent[], season: number,
): Map<string, LearnedMultiplier> {
  const n = y.length;
  const inEvent = new Uint8Array(n);
  for (const ev of events) {
    const [a, b] = eventSteps(ev, t0, stepMs, n);
    for (let i = a; i < b; i++) inEvent[i] = 1;
  }
  const ratios = new Map<string, number[]>();
  for (const ev of events) {
    const [a, b] = eventSteps(ev, t0, stepMs, n);
    if (b <= a) continue;
    let act = 0, base = 0, used = 0;
    for (let i = a; i < b; i++) {
      const back: number[] = [];
      const m = Math.max(1, season);
      for (let c = 1; c <= BASELINE_CYCLES; c++) {
        const j = i - c * m;
        if (j >= 0 && !inEvent[j]) back.push(y[j]!);
      }
      if (back.length === 0) continue;
      act += y[i]!;
      base += median(back);
      used++;
    }
    if (used < Math.max(1, (b - a) / 2) || base <= 0) continue;
    const list = ratios.get(ev.name) ?? [];
    list.push(act / base);
    ratios.set(ev.name, list);
  }
  const out = new Map<string, LearnedMultiplier>();
  const names = new Set(events.map((e) => e.name));
  for (const name of names) {
    const r = ratios.get(name);
    if (r && r.length) {
      out.set(name, { name, multiplier: clampMult(median(r)), occurrences: r.length, source: 'learned' });
    } else {
      const given = events.find((e) => e.name === name && e.multiplier !== undefined)?.multiplier;
      out.set(name, given !== undefined
        ? { name, multiplier: clampMult(given), occurrences: 0, source: 'expected' }
        : { name, multiplier: 1, occurrences: 0, source: 'default' });
    }
  }
  return out;
}

function clampMult(m: number): number {
  return Math.min(MAX_MULTIPLIER, Math.max(1 / MAX_MULTIPLIER, m));
}

/** Per-step multiplier over the grid [0, length) (overlapping events multiply). */
export function multiplierPath(
  events: readonly ScheduledEvent[], mults: ReadonlyMap<string, LearnedMultiplier>,
  t0: number, stepMs: number, length: number,
): Float64Array {
  const f = new Float64Array(length).fill(1);
  for (const ev of events) {
    const m = mults.get(ev.name)?.multiplier ?? ev.multiplier ?? 1;
    const [a, b] = eventSteps(ev, t0, stepMs, length);
    for (let i = a; i < b; i++) f[i]! *= m;
  }
  return f;
}

/** Events that apply to a series of `table` (no table on the event = every table). */
export function eventsFor(events: readonly ScheduledEvent[], table?: string): ScheduledEvent[] {
  return events.filter((e) => e.table === undefined || table === undefined || e.table === table.toLowerCase());
}
