// Backfill chunks copied in a worker thread: every row of a chunk passes through JS (pg parses
// each CopyData message), and on the leader that is the proxy's event loop. Measured by
// bench/mover: with the copy in the proxy's thread, its event-loop lag p99 went from 5 to 16 ms
// during a copy, and every client of that proxy waited that long.
import { Worker } from 'node:worker_threads';
import type { Checkpoint, Range } from './backfill.js';
import type { MoveTable } from './shards.js';

export interface CopierSetup {
  srcUrl: string;
  dstUrl: string;
  appName: string;
}

export type CopierRequest =
  | { kind: 'chunk'; id: number; jobId: number; table: MoveTable; range: Range; cp: Checkpoint; chunkRows: number }
  | { kind: 'close'; id: number };

export type CopierReply =
  | { id: number; ok: true; cp?: Checkpoint }
  | { id: number; ok: false; error: { message: string; fields: Record<string, string> } };

/** One worker per job's copy phase; its own source and target connections. */
export class ChunkCopier {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: CopierReply) => void; reject: (e: Error) => void }>();

  constructor(private readonly setup: CopierSetup) {}

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./copier-worker.js', import.meta.url), { workerData: this.setup });
    w.on('message', (r: CopierReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
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
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      w.postMessage(req);
    });
  }

  /** copyChunk (backfill.ts) in the worker; its errors come back with their SQLSTATE and fields. */
  async copyChunk(jobId: number, table: MoveTable, range: Range, cp: Checkpoint, chunkRows: number): Promise<Checkpoint> {
    const r = await this.request({ kind: 'chunk', id: this.nextId++, jobId, table, range, cp, chunkRows });
    if (!r.ok) throw Object.assign(new Error(r.error.message), r.error.fields);
    return r.cp!;
  }

  /** Ends the worker's connections (an uncommitted chunk rolls back) and the worker. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    if (this.pending.size === 0) {
      await Promise.race([this.request({ kind: 'close', id: this.nextId++ }).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.worker = null;
    await w.terminate();
  }
}
