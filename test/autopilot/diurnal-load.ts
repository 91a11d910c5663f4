// Load for the autopilot e2e test: paced node-postgres writers through the proxy following a
// simulated-time curve, with the exact ledger of test/mover/workload.ts (accounts + items).
// Every operation is a write transaction plus a key-routed report of REPORT_ROWS rows on a
// preloaded key nobody writes.
//
// Every key belongs to one writer, so the ledger is exact: an operation is applied to it only
// after COMMIT was acknowledged. Writers pace themselves in real time from the rate the curve
// gives at the current simulated time (ops per real second); a writer that falls more than a
// second behind drops the backlog instead of bursting. Any error stops that writer (an error in
// COMMIT would leave the ledger ambiguous) and is reported: the test wants zero.
import pg from 'pg';
import type { Ledger } from '../mover/workload.js';

export interface KeyClass {
  name: string;
  /** Keys the writers insert, update and delete. */
  keys: number[];
  /** Preloaded keys nobody writes: every operation also reads one of them with REPORT_ROWS rows. */
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
    for (let w = 0; w < cls.writers; w++) {
      const id = nextId++;
      const mine = cls.keys.filter((_, i) => i % cls.writers === w);
      const report = cls.reportKeys?.length ? { keys: cls.reportKeys, rows: REPORT_ROWS } : null;
      loops.push(writer(id, cls, mine, report, w / cls.writers, w * 7919 + cls.name.length * 104729 + 1));
    }
  }

  async function writer(id: number, cls: KeyClass, keys: number[], report: { keys: number[]; rows: number } | null, phase: number, seed: number): Promise<void> {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    let connected = false;
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
        if (keys.length === 0) continue;
        const k = keys[rnd(keys.length)]!;
        const roll = rnd(100);
        const exists = ledger.accounts.has(k);
        const seq = 1 + rnd(3);
        await c.query('BEGIN');
        if (!exists) {
          await c.query('INSERT INTO accounts (id, balance, note) VALUES ($1, 0, $2)', [k, `${cls.name}`]);
          await c.query('INSERT INTO items (account_id, seq, qty) VALUES ($1, 1, 1)', [k]);
        } else if (roll < 10) {
          await c.query('DELETE FROM items WHERE account_id = $1', [k]);
          await c.query('DELETE FROM accounts WHERE id = $1', [k]);
        } else if (roll < 55) {
          await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [k]);
          await c.query('INSERT INTO items (account_id, seq, qty) VALUES ($1, $2, 1) ON CONFLICT (account_id, seq) DO UPDATE SET qty = items.qty + 1', [k, seq]);
        } else {
          await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [k]);
        }
        await c.query('COMMIT');
        // The report: rows dominate the load score, so the step-to-step swings of a loaded
        // machine's latency (the score's latency term) do not drown the curve.
        if (report) {
          const r = await c.query({ text: REPORT_SQL, values: [report.keys[rnd(report.keys.length)]], rowMode: 'array' });
          if (r.rowCount !== report.rows) throw new Error(`report on a preloaded key returned ${r.rowCount} rows, not ${report.rows}`);
        }
        // Acknowledged: the ledger follows.
        stats.ops++;
        const step = Math.floor(clock.now() / stepMs);
        const byStep = stats.opsByStep.get(cls.name)!;
        byStep.set(step, (byStep.get(step) ?? 0) + 1);
        if (!exists) {
          ledger.accounts.set(k, 0);
          ledger.items.set(k, new Map([[1, 1]]));
        } else if (roll < 10) {
          ledger.accounts.delete(k);
          ledger.items.delete(k);
        } else {
          ledger.accounts.set(k, ledger.accounts.get(k)! + 1);
          if (roll < 55) {
            const m = ledger.items.get(k)!;
            m.set(seq, (m.get(seq) ?? 0) + 1);
          }
        }
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
