// Backfill chunks copied in a worker thread: every row of a chunk passes through JS (pg parses
// each CopyData message), and on the leader that is the proxy's event loop. Measured by
// bench/mover: with the copy in the proxy's thread, its event-loop lag p99 went from 5 to 16 ms
// during a copy, and every client of that proxy waited that long. One worker per Mover, kept
// between jobs (a fresh worker per job starts with cold JIT: a 200 k-row copy took 0.3 s longer),
// with a source and a target connection per job.
import { Worker } from 'node:worker_threads';
import type { Checkpoint, Range } from './backfill.js';
import type { MoveTable } from './shards.js';

export interface CopierSetup {
  appName: string;
}

export type CopierRequest =
  | { kind: 'chunk'; id: number; jobId: number; srcUrl: string; dstUrl: string; table: MoveTable; range: Range; cp: Checkpoint; chunkRows: number; bytesPerSec?: number }
  | { kind: 'release'; id: number; jobId: number };

export type CopierReply =
  | { id: number; ok: true; cp?: Checkpoint }
  | { id: number; ok: false; error: { message: string; fields: Record<string, string> } };

export interface CopyEnds {
  srcUrl: string;
  dstUrl: string;
}

export class ChunkCopier {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: CopierReply) => void; reject: (e: Error) => void }>();

  constructor(private readonly setup: CopierSetup) {}

  /** Whether a worker thread was ever started (chunks were copied off this thread). */
  get started(): boolean {
    return this.everStarted;
  }

  private everStarted = false;

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./copier-worker.js', import.meta.url), { workerData: this.setup });
    this.everStarted = true;
    w.on('message', (r: CopierReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      // An idle worker must not keep the process alive.
      if (this.pending.size === 0) w.unref();
      p?.resolve(r);
    });
    const fail = (err: Error): void => {
      if (this.worker === w) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', (e) => fail(new Error(`copy worker crashed: ${e.message}`)));
    w.on('exit', (code) => fail(Object.assign(new Error(`copy worker exited with code ${code}: Connection terminated`), { code: '08006' })));
    this.worker = w;
    return w;
  }

  private request(req: CopierRequest): Promise<CopierReply> {
    const w = this.start();
    w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      w.postMessage(req);
    });
  }

  /** copyChunk (backfill.ts) in the worker on job `jobId`'s connections; errors keep their SQLSTATE and fields. */
  async copyChunk(jobId: number, ends: CopyEnds, table: MoveTable, range: Range, cp: Checkpoint, chunkRows: number, bytesPerSec?: number): Promise<Checkpoint> {
    const r = await this.request({ kind: 'chunk', id: this.nextId++, jobId, ...ends, table, range, cp, chunkRows, ...(bytesPerSec === undefined ? {} : { bytesPerSec }) });
    if (!r.ok) throw Object.assign(new Error(r.error.message), r.error.fields);
    return r.cp!;
  }

  /** Ends job `jobId`'s connections (an uncommitted chunk rolls back); the worker stays for the next job. */
  async release(jobId: number): Promise<void> {
    if (!this.worker) return;
    await this.request({ kind: 'release', id: this.nextId++, jobId }).catch(() => {});
  }

  /** Ends the worker and every connection it holds. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
