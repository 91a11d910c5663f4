// Foreground load for the mover benchmarks: node-postgres clients through the proxy at a steady
// rate, in a worker thread (its own event loop, so the proxy and the mover in the main thread do
// not delay the clients' clocks, and the clients' work does not sit on the proxy's event loop).
//
// Each client runs its share of the rate, paced: the next operation starts one interval after the
// previous one was scheduled, or at once if the client is behind (no catch-up burst). Operations:
//   read   SELECT balance FROM accounts WHERE id = $1
//   write  UPDATE accounts SET balance = balance + 1 WHERE id = $1
//   txn    BEGIN; SELECT … FOR UPDATE; UPDATE …; COMMIT   (latency = BEGIN sent → COMMIT answered)
// A share of operations (movingShare) uses keys of the partition being moved, the rest other keys.
// Every operation is recorded with its absolute start time (ms, comparable with the main thread's
// nowMs()), its latency as the client saw it, and whether it failed; the records come back when
// the load stops.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import { nowMs } from './stats.js';

export interface LoadOptions {
  url: string;
  clients: number;
  /** Operations per second, all clients together. */
  rate: number;
  movingKeys: number[];
  otherKeys: number[];
  /** Fraction of operations on the moving range's keys. */
  movingShare: number;
  /** Fractions of reads and writes; the rest are transactions. */
  readShare: number;
  writeShare: number;
  seed?: number;
}

export const KIND_READ = 0;
export const KIND_WRITE = 1;
export const KIND_TXN = 2;
export const KIND_NAMES = ['read', 'write', 'txn'] as const;

/** Columnar records: op i started at start[i] (abs ms) and took dur[i] ms. */
export interface LoadRecords {
  start: Float64Array;
  dur: Float64Array;
  moving: Uint8Array;
  kind: Uint8Array;
  failed: Uint8Array;
  /** SQLSTATE (or message) → count, for failed operations. */
  errors: Record<string, number>;
  /** Operations that had to wait for their slot longer than one interval (the client fell behind). */
  late: number;
}

export interface RunningLoad {
  /** Stop the clients, close their connections, return everything recorded. */
  stop(): Promise<LoadRecords>;
  /** Kill the worker without collecting (failure paths). */
  kill(): Promise<void>;
}

export async function startLoad(opts: LoadOptions): Promise<RunningLoad> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { pgtideBenchLoad: opts } });
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => {
    exited = true;
    resolve();
  }));
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(`load worker: ${m.error}`))));
    void exit.then(() => reject(new Error('load worker exited before it was ready')));
  });
  try {
    await ready;
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  return {
    async stop() {
      const got = new Promise<LoadRecords>((resolve, reject) => {
        worker.once('message', (m: LoadRecords & { error?: string }) => (m.error ? reject(new Error(`load worker: ${m.error}`)) : resolve(m)));
        worker.once('error', reject);
        void exit.then(() => reject(new Error('load worker exited without its records')));
      });
      worker.postMessage({ stop: true });
      try {
        return await got;
      } finally {
        const t = setTimeout(() => void worker.terminate(), 10_000);
        await exit;
        clearTimeout(t);
      }
    },
    async kill() {
      if (!exited) await worker.terminate();
    },
  };
}

// ---------------------------------------------------------------------------- the worker side

async function workerMain(o: LoadOptions): Promise<void> {
  let stopping = false;
  parentPort!.on('message', (m: { stop?: boolean }) => {
    if (m.stop) stopping = true;
  });
  const clients: pg.Client[] = [];
  try {
    for (let i = 0; i < o.clients; i++) {
      const c = new pg.Client({ connectionString: o.url, application_name: 'pgtide-bench-load' });
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
    }
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
    await Promise.allSettled(clients.map((c) => c.end()));
    return;
  }
  parentPort!.postMessage({ ready: true });
  let cap = 1 << 14;
  let n = 0;
  let start = new Float64Array(cap), dur = new Float64Array(cap);
  let moving = new Uint8Array(cap), kind = new Uint8Array(cap), failed = new Uint8Array(cap);
  const errors: Record<string, number> = {};
  let late = 0;
  const record = (s: number, d: number, mv: boolean, k: number, err: unknown) => {
    if (n === cap) {
      cap *= 2;
      const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(cap);
        b.set(a);
        return b;
      };
      start = grow(start, (m) => new Float64Array(m));
      dur = grow(dur, (m) => new Float64Array(m));
      moving = grow(moving, (m) => new Uint8Array(m));
      kind = grow(kind, (m) => new Uint8Array(m));
      failed = grow(failed, (m) => new Uint8Array(m));
    }
    start[n] = s;
    dur[n] = d;
    moving[n] = mv ? 1 : 0;
    kind[n] = k;
    failed[n] = err ? 1 : 0;
    if (err) {
      const e = err as { code?: string; message?: string };
      const key = e.code ?? e.message ?? String(err);
      errors[key] = (errors[key] ?? 0) + 1;
    }
    n++;
  };
  const interval = (1000 * o.clients) / o.rate;
  const loop = async (c: pg.Client, idx: number) => {
    let x = ((o.seed ?? 1) * 7919 + idx * 104729) >>> 0 || 1;
    const rnd = () => {
      // xorshift32
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      return x / 4294967296;
    };
    // Spread the clients' first slots over one interval.
    let next = nowMs() + interval * (idx / o.clients);
    while (!stopping) {
      const wait = next - nowMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else if (wait < -interval) late++;
      if (stopping) break;
      const mv = rnd() < o.movingShare;
      const keys = mv ? o.movingKeys : o.otherKeys;
      const id = keys[Math.floor(rnd() * keys.length)]!;
      const r = rnd();
      const k = r < o.readShare ? KIND_READ : r < o.readShare + o.writeShare ? KIND_WRITE : KIND_TXN;
      const t0 = nowMs();
      let err: unknown = null;
      try {
        if (k === KIND_READ) await c.query('SELECT balance FROM accounts WHERE id = $1', [id]);
        else if (k === KIND_WRITE) await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [id]);
        else {
          await c.query('BEGIN');
          await c.query('SELECT balance FROM accounts WHERE id = $1 FOR UPDATE', [id]);
          await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [id]);
          await c.query('COMMIT');
        }
      } catch (e) {
        err = e;
        if (k === KIND_TXN) await c.query('ROLLBACK').catch(() => {});
      }
      record(t0, nowMs() - t0, mv, k, err);
      next = Math.max(next + interval, nowMs());
    }
  };
  await Promise.all(clients.map((c, i) => loop(c, i)));
  await Promise.allSettled(clients.map((c) => c.end()));
  const out: LoadRecords = { start: start.slice(0, n), dur: dur.slice(0, n), moving: moving.slice(0, n), kind: kind.slice(0, n), failed: failed.slice(0, n), errors, late };
  parentPort!.postMessage(out);
}

if (!isMainThread && (workerData as { pgtideBenchLoad?: LoadOptions } | null)?.pgtideBenchLoad) {
  void workerMain((workerData as { pgtideBenchLoad: LoadOptions }).pgtideBenchLoad).catch((err: Error) => {
    parentPort!.postMessage({ error: err.message });
  });
}

/** Indices of operations that were in flight at some point of [from, to] (abs ms). */
export function overlapping(r: LoadRecords, from: number, to: number, filter?: (i: number) => boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < r.start.length; i++) {
    if (r.start[i]! <= to && r.start[i]! + r.dur[i]! >= from && (!filter || filter(i))) out.push(i);
  }
  return out;
}

/** Latencies (ms) of operations that started in [from, to). */
export function startedIn(r: LoadRecords, from: number, to: number, filter?: (i: number) => boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < r.start.length; i++) {
    if (r.start[i]! >= from && r.start[i]! < to && (!filter || filter(i))) out.push(r.dur[i]!);
  }
  return out;
}
