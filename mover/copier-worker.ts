// Worker-thread entry of ChunkCopier: per job a source and a target connection; copies chunks on request.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { copyChunk } from './backfill.js';
import type { CopierReply, CopierRequest, CopierSetup } from './copier.js';

const setup = workerData as CopierSetup;
const jobs = new Map<number, { srcUrl: string; dstUrl: string; src: Promise<pg.Client>; dst: Promise<pg.Client> }>();

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: setup.appName });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function drop(jobId: number): Promise<void> {
  const j = jobs.get(jobId);
  jobs.delete(jobId);
  if (!j) return;
  await Promise.allSettled([j.src, j.dst].map(async (c) => (await c).end()));
}

function connections(jobId: number, srcUrl: string, dstUrl: string): { src: Promise<pg.Client>; dst: Promise<pg.Client> } {
  let j = jobs.get(jobId);
  if (!j || j.srcUrl !== srcUrl || j.dstUrl !== dstUrl) {
    if (j) void drop(jobId);
    j = { srcUrl, dstUrl, src: connect(srcUrl), dst: connect(dstUrl) };
    // A failed connect is reported by the chunk that awaits it; never as an unhandled rejection.
    j.src.catch(() => {});
    j.dst.catch(() => {});
    jobs.set(jobId, j);
  }
  return j;
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: CopierRequest) => {
    void (async () => {
      if (m.kind === 'release') {
        await drop(m.jobId);
        port.postMessage({ id: m.id, ok: true } satisfies CopierReply);
        return;
      }
      try {
        const c = connections(m.jobId, m.srcUrl, m.dstUrl);
        const cp = await copyChunk(await c.src, await c.dst, m.jobId, m.table, m.range, m.cp, m.chunkRows, m.bytesPerSec);
        port.postMessage({ id: m.id, ok: true, cp } satisfies CopierReply);
      } catch (err) {
        // The connections may be broken or mid-transaction: the job's next chunk starts on fresh ones.
        await drop(m.jobId);
        const e = err as Error & Record<string, unknown>;
        const fields: Record<string, string> = {};
        for (const k of ['code', 'detail', 'hint', 'severity', 'errno', 'syscall']) if (typeof e?.[k] === 'string') fields[k] = e[k] as string;
        port.postMessage({ id: m.id, ok: false, error: { message: e?.message ?? String(err), fields } } satisfies CopierReply);
      }
    })();
  });
}
