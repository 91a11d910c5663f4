// Seeded synthetic load traces for the planner simulator: diurnal/weekly, ramps, flash crowds, campaigns, drift.
//
// Each cell's load per tick = total(t) · share_c(t) · noise, where
//   total(t): diurnal curve with a 10× peak/trough ratio (trough 04:00, peak 16:00), weekends at
//             WEEKEND_FACTOR, a regime shift (permanent step up) on a given day;
//   share_c(t): (1 − HOT_SHARE) spread evenly + HOT_SHARE over a Zipf hot set of HOT_CELLS cells
//             whose centre drifts HOT_DRIFT_CELLS_PER_DAY and jumps at the regime shift;
// plus a tenant ramp (a range growing linearly over days), unannounced flash crowds (5× on a small
// range for an hour, 15-minute ramps, random weekday daytime), and announced campaigns (a
// multiplier on a range for a few hours, listed in `events` so forecasters may use them).
import { cellLo, type SimTrace } from '../../planner/simulate.js';
import type { AnnouncedEvent } from '../../planner/forecast-provider.js';

export const TROUGH_FRACTION = 0.1;
export const WEEKEND_FACTOR = 0.6;
export const HOT_SHARE = 0.3;
export const HOT_CELLS = 96;
export const HOT_ZIPF_S = 0.7;
export const HOT_DRIFT_CELLS_PER_DAY = 3;
/** Unannounced flash crowds multiply their range's load by this. */
export const FLASH_MULTIPLIER = 5;
export const FLASH_SECONDS = 3600;
export const FLASH_RAMP_SECONDS = 900;

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rng: () => number): number {
  const u = Math.max(1e-12, rng());
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface CampaignSpec {
  name: string;
  day: number;
  hour: number;
  hours: number;
  /** Fraction range of the key space [from, to). */
  from: number;
  to: number;
  multiplier: number;
}

export interface TraceSpec {
  seed: number;
  /** Midnight UTC of a Monday. */
  startMs: number;
  days: number;
  trainDays: number;
  tickSeconds: number;
  cells: number;
  /** Total load at the weekday peak, before ramps, campaigns and the regime shift. */
  peakLoad: number;
  cellBytes: number;
  initialPartitions: number;
  noise: number;
  campaigns: CampaignSpec[];
  /** Number of unannounced flash crowds in the replay (and one in training). */
  flashCrowds: number;
  /** Fraction of the key space each flash crowd hits. */
  flashWidth: number;
  ramp?: { fromDay: number; toDay: number; from: number; to: number; multiplier: number };
  regimeShift?: { day: number; factor: number };
}

export const DEFAULT_TRACE: TraceSpec = {
  seed: 42,
  startMs: Date.UTC(2025, 2, 3),
  days: 28,
  trainDays: 14,
  tickSeconds: 300,
  cells: 512,
  peakLoad: 5000,
  cellBytes: 1.5e9,
  initialPartitions: 16,
  noise: 0.08,
  campaigns: [
    { name: 'spring-sale (training)', day: 2, hour: 10, hours: 4, from: 0.125, to: 0.375, multiplier: 2.5 },
    { name: 'flash-sale', day: 16, hour: 10, hours: 4, from: 0.125, to: 0.375, multiplier: 2.5 },
    { name: 'tv-spot', day: 23, hour: 19, hours: 3, from: 0, to: 1, multiplier: 1.8 },
  ],
  flashCrowds: 3,
  flashWidth: 1 / 64,
  ramp: { fromDay: 15, toDay: 19, from: 0.6, to: 0.68, multiplier: 3 },
  regimeShift: { day: 20, factor: 1.3 },
};

export function diurnal(hourOfDay: number): number {
  const shape = Math.pow((1 - Math.cos((2 * Math.PI * (hourOfDay - 4)) / 24)) / 2, 1.5);
  return TROUGH_FRACTION + (1 - TROUGH_FRACTION) * shape;
}

/** Builds a trace; deterministic for a given spec (seed included). */
export function generateTrace(spec: TraceSpec = DEFAULT_TRACE): SimTrace & { flashCrowds: { startMs: number; c0: number; c1: number }[] } {
  const rng = mulberry32(spec.seed);
  const ticksPerDay = Math.round(86400 / spec.tickSeconds);
  const ticks = spec.days * ticksPerDay;
  const cells = spec.cells;
  const load = new Float32Array(ticks * cells);
  const tickMs = spec.tickSeconds * 1000;
  const cellAt = (f: number) => Math.max(0, Math.min(cells, Math.round(f * cells)));

  // Zipf ranks over hot-set offsets, shuffled so the hottest cells are not adjacent.
  const offsets = Array.from({ length: HOT_CELLS }, (_, i) => i - HOT_CELLS / 2);
  for (let i = offsets.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [offsets[i], offsets[j]] = [offsets[j]!, offsets[i]!];
  }
  const zipf = offsets.map((_, r) => 1 / Math.pow(r + 1, HOT_ZIPF_S));
  const zsum = zipf.reduce((a, b) => a + b, 0);
  const center0 = Math.floor(rng() * cells);
  const centerJump = Math.floor(cells / 3 + rng() * (cells / 3));

  const events: AnnouncedEvent[] = spec.campaigns.map((c) => ({
    name: c.name,
    startMs: spec.startMs + (c.day * 24 + c.hour) * 3600_000,
    endMs: spec.startMs + (c.day * 24 + c.hour + c.hours) * 3600_000,
    lo: cellLo(cellAt(c.from), cells),
    hi: cellLo(cellAt(c.to), cells),
    multiplier: c.multiplier,
  }));
  const campaignCells = spec.campaigns.map((c, i) => ({ c0: cellAt(c.from), c1: cellAt(c.to), ev: events[i]! }));

  // Flash crowds: one in training, the rest in the replay, on weekday daytime.
  const flashes: { startMs: number; c0: number; c1: number }[] = [];
  const width = Math.max(1, Math.round(spec.flashWidth * cells));
  const pickDay = (lo: number, hi: number) => {
    for (;;) {
      const d = lo + Math.floor(rng() * (hi - lo));
      if (d % 7 < 5) return d;
    }
  };
  for (let i = 0; i < spec.flashCrowds + 1; i++) {
    const day = i === 0 ? pickDay(1, spec.trainDays) : pickDay(spec.trainDays, spec.days);
    const hour = 8 + rng() * 12;
    const c0 = Math.floor(rng() * (cells - width));
    flashes.push({ startMs: spec.startMs + (day * 24 + hour) * 3600_000, c0, c1: c0 + width });
  }

  let ar = 0;
  const share = new Float64Array(cells);
  for (let t = 0; t < ticks; t++) {
    const ms = spec.startMs + t * tickMs;
    const day = Math.floor(t / ticksPerDay);
    const hour = ((t % ticksPerDay) * spec.tickSeconds) / 3600;
    const weekday = day % 7;
    ar = 0.9 * ar + 0.1 * gaussian(rng) * 0.3;
    let total = spec.peakLoad * diurnal(hour) * (weekday >= 5 ? WEEKEND_FACTOR : 1) * Math.exp(ar * 0.5);
    const shifted = spec.regimeShift && day >= spec.regimeShift.day;
    if (shifted) total *= spec.regimeShift!.factor;
    // Hot-set share per cell.
    share.fill((1 - HOT_SHARE) / cells);
    const center = Math.floor(center0 + (HOT_DRIFT_CELLS_PER_DAY * t) / ticksPerDay + (shifted ? centerJump : 0));
    for (let r = 0; r < HOT_CELLS; r++) {
      const c = (((center + offsets[r]!) % cells) + cells) % cells;
      share[c] = share[c]! + (HOT_SHARE * zipf[r]!) / zsum;
    }
    const row = t * cells;
    for (let c = 0; c < cells; c++) {
      const noise = Math.exp(gaussian(rng) * spec.noise - (spec.noise * spec.noise) / 2);
      load[row + c] = total * share[c]! * noise;
    }
    if (spec.ramp) {
      const f = Math.max(0, Math.min(1, (t / ticksPerDay - spec.ramp.fromDay) / (spec.ramp.toDay - spec.ramp.fromDay)));
      const m = 1 + (spec.ramp.multiplier - 1) * f;
      for (let c = cellAt(spec.ramp.from); c < cellAt(spec.ramp.to); c++) load[row + c] = load[row + c]! * m;
    }
    for (const cc of campaignCells) {
      if (ms < cc.ev.startMs || ms >= cc.ev.endMs) continue;
      for (let c = cc.c0; c < cc.c1; c++) load[row + c] = load[row + c]! * cc.ev.multiplier;
    }
    for (const f of flashes) {
      const dt = (ms - f.startMs) / 1000;
      if (dt < 0 || dt >= FLASH_SECONDS + FLASH_RAMP_SECONDS) continue;
      const ramp = dt < FLASH_RAMP_SECONDS ? (dt + spec.tickSeconds) / FLASH_RAMP_SECONDS : dt >= FLASH_SECONDS ? 1 - (dt - FLASH_SECONDS) / FLASH_RAMP_SECONDS : 1;
      const m = 1 + (FLASH_MULTIPLIER - 1) * Math.min(1, Math.max(0, ramp));
      for (let c = f.c0; c < f.c1; c++) load[row + c] = load[row + c]! * m;
    }
  }
  return {
    startMs: spec.startMs,
    tickSeconds: spec.tickSeconds,
    ticks,
    cells,
    load,
    cellBytes: new Float64Array(cells).fill(spec.cellBytes),
    events,
    trainTicks: spec.trainDays * ticksPerDay,
    initialPartitions: spec.initialPartitions,
    flashCrowds: flashes,
  };
}
