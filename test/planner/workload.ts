// Test helper: turns a declarative planner fixture (seeded workload + expected plan) into PlannerInput.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HASH_END, HASH_MIN, type RoutingTable } from '../../config/types.js';
import type { ActionRecord, KeySample, PartitionForecast, PlannerInput, PlannerKnobs, QuantileStep, Thresholds } from '../../planner/types.js';

/** Fixtures live in the source tree; tests run from dist/test/planner. */
export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'planner');

export type LoadShape =
  | { shape: 'flat'; level: number; noise?: number }
  | { shape: 'diurnal'; trough: number; peak: number; peakHour?: number }
  | { shape: 'ramp'; from: number; to: number }
  | { shape: 'nan' }
  | { shape: 'missing' };

export type KeyDist = { dist: 'zipf'; n: number; s: number } | { dist: 'uniform'; n: number } | { dist: 'one-key' };

export interface FixturePartition {
  id: number;
  /** Fraction of the hash space [from, to). */
  from: number;
  to: number;
  shard: number;
  bytes: number;
  load: LoadShape;
  /** Relative width of the 80 % interval around the mean (p10 = mean·(1−spread), p90 = mean·(1+spread)). */
  spread?: number;
  keys?: KeyDist;
  /** Measured load in the last interval (reactive fallback). */
  actual?: number;
  /** Measured load in the interval before (surge detection). */
  previous?: number;
}

/** A fixture written inline in a test: two shards and one spare of capacity 1000, nothing expected. */
export function inlineFixture(now: string, partitions: FixturePartition[], extra: Partial<Fixture> = {}): Fixture {
  return {
    name: 'inline',
    description: 'inline',
    seed: 1,
    now,
    shards: [
      { id: 1, capacity: 1000 },
      { id: 2, capacity: 1000 },
    ],
    spares: [{ id: 9, capacity: 1000 }],
    partitions,
    expect: {},
    ...extra,
  };
}

/** A partition with flat load `level` over the key range [from, to) of its key space, uniform keys. */
export function flatPartition(id: number, from: number, to: number, shard: number, level: number, more: Partial<FixturePartition> & { bytes: number; spread: number }): FixturePartition {
  return { id, from, to, shard, load: { shape: 'flat', level }, keys: { dist: 'uniform', n: 200 }, ...more };
}

export interface ExpectedStep {
  kind: string;
  partition?: number;
  toShard?: number;
  fromShard?: number;
  spare?: number;
  shard?: number;
  startReason?: string;
  trigger?: string;
}

export interface Fixture {
  name: string;
  description: string;
  seed: number;
  now: string;
  stepSeconds?: number;
  horizonSteps?: number;
  shards: { id: number; capacity: number; state?: 'active' | 'draining' }[];
  spares?: { id: number; capacity: number }[];
  partitions: FixturePartition[];
  thresholds?: Partial<Thresholds>;
  knobs?: Partial<PlannerKnobs>;
  /** Past actions; `minutesAgo` instead of a timestamp, ranges as fractions. */
  history?: { kind: ActionRecord['kind']; minutesAgo: number; from?: number; to?: number; at?: number; fromShard?: number; toShard?: number; shardId?: number }[];
  runningJobs?: { partition: number; kind: 'split' | 'merge' | 'move'; toShard?: number }[];
  mover?: { throughputBytesPerSec: number; cutoverSeconds: number };
  expect: {
    /** Exactly these steps, in this order (fields given are compared). */
    steps?: ExpectedStep[];
    /** At least these steps, in this order. */
    includes?: ExpectedStep[];
    /** No step of these kinds. */
    noKinds?: string[];
    /** No step may touch these partitions. */
    untouched?: number[];
    reasons?: string[];
    forecastMiss?: number;
  };
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  partitionMaxLoad: 300,
  partitionMinLoad: 60,
  shardMaxUtilization: 0.7,
  shardMinUtilization: 0.4,
  partitionMaxBytes: 64e9,
  targetP99Ms: 50,
  baseP99Ms: 5,
};

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

const SPAN = 1n << 64n;
export function fractionToHash(f: number): bigint {
  if (f <= 0) return HASH_MIN;
  if (f >= 1) return HASH_END;
  return HASH_MIN + (SPAN * BigInt(Math.round(f * 1e9))) / 1_000_000_000n;
}

/** Load-weighted key samples over [lo, hi): n keys at seeded random hashes with Zipf or even weights. */
export function keySamples(lo: bigint, hi: bigint, d: KeyDist, rng: () => number): KeySample[] {
  const span = hi - lo;
  const at = () => lo + (span * BigInt(Math.floor(rng() * 1e9))) / 1_000_000_000n;
  if (d.dist === 'one-key') return [{ hash: at(), weight: 1 }];
  const out: KeySample[] = [];
  for (let r = 0; r < d.n; r++) out.push({ hash: at(), weight: d.dist === 'zipf' ? 1 / Math.pow(r + 1, d.s) : 1 });
  return out;
}

function meanAt(shape: LoadShape, t: number, stepIndex: number, steps: number, rng: () => number): number {
  switch (shape.shape) {
    case 'flat':
      return shape.level * (1 + (shape.noise ?? 0) * (rng() * 2 - 1));
    case 'diurnal': {
      const hour = new Date(t).getUTCHours() + new Date(t).getUTCMinutes() / 60;
      const peakHour = shape.peakHour ?? 14;
      const x = (1 + Math.cos((2 * Math.PI * (hour - peakHour)) / 24)) / 2;
      return shape.trough + (shape.peak - shape.trough) * x;
    }
    case 'ramp':
      return shape.from + ((shape.to - shape.from) * stepIndex) / Math.max(1, steps - 1);
    default:
      return NaN;
  }
}

export function buildInput(fx: Fixture): PlannerInput {
  const rng = mulberry32(fx.seed);
  const nowMs = Date.parse(fx.now);
  const stepSeconds = fx.stepSeconds ?? 900;
  const steps = fx.horizonSteps ?? 48;
  const routing: RoutingTable = {
    version: 1,
    shards: fx.shards.map((s) => ({ id: s.id, url: `postgres://shard${s.id}`, state: s.state ?? 'active' })),
    keyspaces: [{ id: 1, name: 'ks', family: 'int' }],
    tables: [],
    partitions: fx.partitions.map((p) => ({ id: p.id, keyspaceId: 1, lo: fractionToHash(p.from), hi: fractionToHash(p.to), shardId: p.shard, state: 'active' })),
  };
  const forecasts: PartitionForecast[] = [];
  for (const p of fx.partitions) {
    if (p.load.shape === 'missing') continue;
    const spread = p.spread ?? 0.1;
    const qs: QuantileStep[] = [];
    for (let i = 0; i < steps; i++) {
      const m = meanAt(p.load, nowMs + i * stepSeconds * 1000, i, steps, rng);
      qs.push({ mean: m, p10: m * (1 - spread), p50: m, p90: m * (1 + spread), p99: m * (1 + 2 * spread) });
    }
    forecasts.push({ partitionId: p.id, startMs: nowMs, stepSeconds, steps: qs, sizeBytes: p.bytes, sizeRows: p.bytes / 100 });
  }
  const history: ActionRecord[] = (fx.history ?? []).map((h) => ({
    kind: h.kind,
    atMs: nowMs - h.minutesAgo * 60_000,
    ...(h.from !== undefined ? { lo: fractionToHash(h.from) } : {}),
    ...(h.to !== undefined ? { hi: fractionToHash(h.to) } : {}),
    ...(h.at !== undefined ? { at: fractionToHash(h.at) } : {}),
    ...(h.fromShard !== undefined ? { fromShard: h.fromShard } : {}),
    ...(h.toShard !== undefined ? { toShard: h.toShard } : {}),
    ...(h.shardId !== undefined ? { shardId: h.shardId } : {}),
  }));
  return {
    nowMs,
    routing,
    shards: fx.shards.map((s) => ({ shardId: s.id, capacity: s.capacity })),
    spareShards: (fx.spares ?? []).map((s) => ({ shardId: s.id, capacity: s.capacity })),
    forecasts,
    keySamples: fx.partitions.filter((p) => p.keys).map((p) => ({ partitionId: p.id, samples: keySamples(fractionToHash(p.from), fractionToHash(p.to), p.keys!, rng) })),
    sizes: fx.partitions.map((p) => ({ partitionId: p.id, bytes: p.bytes, rows: p.bytes / 100 })),
    thresholds: { ...DEFAULT_THRESHOLDS, ...(fx.thresholds ?? {}) },
    knobs: fx.knobs ?? {},
    history,
    mover: fx.mover ?? { throughputBytesPerSec: 100e6, cutoverSeconds: 0.1 },
    runningJobs: (fx.runningJobs ?? []).map((j, i) => ({ jobId: i + 1, partitionId: j.partition, kind: j.kind, ...(j.toShard !== undefined ? { toShard: j.toShard } : {}) })),
    actual: fx.partitions.filter((p) => p.actual !== undefined).map((p) => ({ partitionId: p.id, load: p.actual!, ...(p.previous !== undefined ? { previous: p.previous } : {}) })),
  };
}

export function loadFixtures(): Fixture[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as Fixture);
}
