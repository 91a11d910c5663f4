// Worker-thread entry of ChunkCopier: owns a source and a target connection and copies chunks on request.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { copyChunk } from './backfill.js';
import type { CopierReply, CopierRequest, CopierSetup } from './copier.js';

const setup = workerData as CopierSetup;
let src: pg.Client | null = null;
let dst: pg.Client | null = null;

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: setup.appName });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function drop(): Promise<void> {
  const cs = [src, dst];
  src = dst = null;
  await Promise.allSettled(cs.map((c) => c?.end()));
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: CopierRequest) => {
    if (m.kind === 'close') {
      void drop().then(() => port.postMessage({ id: m.id, ok: true } satisfies CopierReply));
      return;
    }
    void (async () => {
      try {
        src ??= await connect(setup.srcUrl);
        dst ??= await connect(setup.dstUrl);
        const cp = await copyChunk(src, dst, m.jobId, m.table, m.range, m.cp, m.chunkRows);
        port.postMessage({ id: m.id, ok: true, cp } satisfies CopierReply);
      } catch (err) {
        // The connections may be broken or mid-transaction: the next chunk starts on fresh ones.
        await drop();
        const e = err as Error & Record<string, unknown>;
        const fields: Record<string, string> = {};
        for (const k of ['code', 'detail', 'hint', 'severity', 'errno', 'syscall']) if (typeof e?.[k] === 'string') fields[k] = e[k] as string;
        port.postMessage({ id: m.id, ok: false, error: { message: e?.message ?? String(err), fields } } satisfies CopierReply);
      }
    })();
  });
}
