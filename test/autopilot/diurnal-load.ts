// Load for the autopilot e2e test: paced node-postgres writers through the proxy following a
// simulated-time curve, with the exact ledger of test/mover/workload.ts (accounts + items).
// Every operation is a write transaction plus a key-routed report of REPORT_ROWS rows on a
// preloaded key nobody writes.
//
// A key is written by one writer at a time, so the ledger is exact: an operation is applied to
// it only after COMMIT was acknowledged. Writers pace themselves in real time from the rate the curve
// gives at the current simulated time (ops per real second); a writer that falls more than a
// second behind drops the backlog instead of bursting. Any error stops that writer (an error in
// COMMIT would leave the ledger ambiguous) and is reported: the test wants zero.
import pg from 'pg';
import { writeKey, type Ledger } from '../mover/workload.js';

export interface KeyClass {
  name: string;
  /** Keys the writers insert, update and delete, sorted by hash (see `spread`). */
  keys: number[];
  /** Preloaded keys nobody writes (sorted by hash): every operation also reads one of them with REPORT_ROWS rows. */
  reportKeys?: number[];
  writers: number;
  /** Operations per real second at simulated time `simMs`. */
  rate(simMs: number): number;
}

export interface LoadStats {
  ops: number;
  errors: string[];
  /** Per class: operations acknowledged per simulated step (index = floor(sim / stepMs)). */
  opsByStep: Map<string, Map<number, number>>;
}

export interface DiurnalLoad {
  stats: LoadStats;
  /** Resolves once every writer is between operations and holds them there. */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<LoadStats>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Picks {
  next: number;
  reports: number;
  inUse: Set<number>;
}

/**
 * The i-th pick of n keys in low-discrepancy order (van der Corput, base 2): with keys sorted by
 * hash, any run of consecutive picks is spread evenly over the hash range, so each piece of a
 * split gets its share in every second. Random picks made a piece's one-second step swing by
 * ±40 % at the peak, and the compressed clock has no longer steps to average them out.
 */
function spread(i: number, n: number): number {
  let f = 0;
  let half = 0.5;
  for (let x = i + 1; x > 0; x >>= 1, half /= 2) if (x & 1) f += half;
  return Math.min(n - 1, Math.floor(f * n));
}

/** Rows each report returns (the load score counts 100 rows as one read). */
export const REPORT_ROWS = 2500;
const REPORT_SQL = `SELECT 1 FROM accounts a CROSS JOIN generate_series(1, ${REPORT_ROWS}) g WHERE a.id = $1`;

export function startDiurnalLoad(url: string, ledger: Ledger, classes: KeyClass[], clock: { now(): number }, stepMs: number): DiurnalLoad {
  let running = true;
  let paused: { release: () => void; done: Promise<void> } | null = null;
  const idle = new Set<number>();
  const stats: LoadStats = { ops: 0, errors: [], opsByStep: new Map(classes.map((c) => [c.name, new Map()])) };
  let nextId = 0;
  const loops: Promise<void>[] = [];
  for (const cls of classes) {
    // One pick sequence per class, shared by its writers: the picks of a second, whoever makes
    // them, are consecutive in it and so spread over the range.
    const picks: Picks = { next: 0, reports: 0, inUse: new Set() };
    for (let w = 0; w < cls.writers; w++) loops.push(writer(nextId++, cls, picks, w / cls.writers, w * 7919 + cls.name.length * 104729 + 1));
  }

  async function writer(id: number, cls: KeyClass, picks: Picks, phase: number, seed: number): Promise<void> {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    let connected = false;
    const keys = cls.keys;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    try {
      await c.connect();
      connected = true;
      // Writers of a class start spread over one interval: in step, they would come in bursts.
      let next = performance.now() + (phase * 1000) / Math.max(cls.rate(clock.now()) / cls.writers, 0.05);
      while (running) {
        if (paused) {
          idle.add(id);
          await paused.done;
          idle.delete(id);
          next = performance.now();
          continue;
        }
        const now = performance.now();
        if (now < next) {
          await sleep(Math.min(next - now, 100));
          continue;
        }
        if (now - next > 1000) next = now;
        next += 1000 / Math.max(cls.rate(clock.now()) / cls.writers, 0.05);
        // A key in use by another writer of the class is skipped: one writer per key at a time keeps the ledger exact.
        let k: number | undefined;
        for (let tries = 0; tries < 8 && keys.length > 0 && k === undefined; tries++) {
          const x = keys[spread(picks.next++, keys.length)]!;
          if (!picks.inUse.has(x)) k = x;
        }
        if (k === undefined) continue;
        picks.inUse.add(k);
        try {
          await operate(c, cls, k, rnd);
        } finally {
          picks.inUse.delete(k);
        }
        if (cls.reportKeys?.length) await report(c, cls.reportKeys[spread(picks.reports++, cls.reportKeys.length)]!);
        stats.ops++;
        const step = Math.floor(clock.now() / stepMs);
        const byStep = stats.opsByStep.get(cls.name)!;
        byStep.set(step, (byStep.get(step) ?? 0) + 1);
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      stats.errors.push(`${cls.name} writer ${id}: ${e.code ?? ''} ${e.message}`);
      if (connected) await c.query('ROLLBACK').catch(() => {});
    } finally {
      idle.add(id);
      await c.end().catch(() => {});
    }
  }

  /** One write transaction on key k; the ledger follows once COMMIT is acknowledged. */
  async function operate(c: pg.Client, cls: KeyClass, k: number, rnd: (n: number) => number): Promise<void> {
    const roll = rnd(100);
    const exists = ledger.accounts.has(k);
    const seq = 1 + rnd(3);
    await writeKey(c, k, exists, roll, seq, cls.name);
    ledger.acknowledge(k, exists, roll, seq);
  }

  /** The report: rows dominate the load score, so a loaded machine's latency swings do not drown the curve. */
  async function report(c: pg.Client, key: number): Promise<void> {
    const r = await c.query({ text: REPORT_SQL, values: [key], rowMode: 'array' });
    if (r.rowCount !== REPORT_ROWS) throw new Error(`report on preloaded key ${key} returned ${r.rowCount} rows, not ${REPORT_ROWS}`);
  }

  return {
    stats,
    async pause() {
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      paused = { release, done };
      const deadline = Date.now() + 60_000;
      while (idle.size < nextId) {
        if (Date.now() > deadline) throw new Error(`writers did not pause within 60 s (${idle.size} of ${nextId} idle)`);
        await sleep(10);
      }
    },
    resume() {
      const p = paused;
      paused = null;
      p?.release();
    },
    async stop() {
      running = false;
      this.resume();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`writers did not stop within 60 s (${idle.size} of ${nextId} stopped)`)), 60_000);
      });
      try {
        await Promise.race([Promise.all(loops), late]);
      } finally {
        clearTimeout(timer);
      }
      return stats;
    },
  };
}
