// COPY of 1 million rows through the proxy into 2 shards vs directly into one Postgres: rows/s and ratio.
import { startTestCluster } from '../test/helpers/cluster.js';
import { CopyClient } from '../test/helpers/copy-client.js';

const ROWS = 1_000_000;
const CHUNK_ROWS = 2_000;
const ROUNDS = 3;

/** The input, generated once: 1M text rows in ~64 KB CopyData bodies. */
function makeChunks(): Buffer[] {
  const chunks: Buffer[] = [];
  for (let start = 0; start < ROWS; start += CHUNK_ROWS) {
    let s = '';
    for (let i = start; i < start + CHUNK_ROWS; i++) s += `${i}\tcustomer-${i % 9973}\t${(i * 7) % 100000}\n`;
    chunks.push(Buffer.from(s));
  }
  return chunks;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(): Promise<object> {
  const cluster = await startTestCluster({ shards: 2, poolSize: 2 });
  try {
    const chunks = makeChunks();
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const app = await cluster.client();
    await app.query('CREATE TABLE bench_copy (id bigint PRIMARY KEY, name text, n int)');
    await (await cluster.admin()).query('SHARD TABLE bench_copy BY (id)');
    const direct = await cluster.shard(0);
    await direct.query('CREATE TABLE bench_direct (id bigint PRIMARY KEY, name text, n int)');
    const viaProxy = await CopyClient.connect(cluster.proxy.port);
    const straight = await CopyClient.connectUrl(cluster.shards[0]!.url('app'));
    const times: { proxy: number[]; direct: number[] } = { proxy: [], direct: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved rounds, each into an empty table.
      await direct.query('TRUNCATE bench_direct');
      let t = performance.now();
      const d = await straight.copyIn('COPY bench_direct FROM STDIN', chunks);
      times.direct.push(performance.now() - t);
      if (d.tag !== `COPY ${ROWS}`) throw new Error(`direct COPY failed: ${JSON.stringify(d.error)}`);
      await app.query('TRUNCATE bench_copy');
      t = performance.now();
      const p = await viaProxy.copyIn('COPY bench_copy FROM STDIN', chunks);
      times.proxy.push(performance.now() - t);
      if (p.tag !== `COPY ${ROWS}`) throw new Error(`proxy COPY failed: ${JSON.stringify(p.error)}`);
    }
    viaProxy.close();
    straight.close();
    const directMs = median(times.direct);
    const proxyMs = median(times.proxy);
    const result = {
      rows: ROWS, bytes, rounds: ROUNDS,
      direct: { ms: Math.round(directMs), rowsPerSec: Math.round(ROWS / (directMs / 1000)), allMs: times.direct.map(Math.round) },
      proxy2Shards: { ms: Math.round(proxyMs), rowsPerSec: Math.round(ROWS / (proxyMs / 1000)), allMs: times.proxy.map(Math.round) },
      ratio: Number((directMs / proxyMs).toFixed(3)),
    };
    process.stdout.write(`COPY ${ROWS} rows (${(bytes / 1048576).toFixed(1)} MB text), median of ${ROUNDS}\n`);
    process.stdout.write(`${'target'.padEnd(28)}${'ms'.padStart(8)}${'rows/s'.padStart(12)}\n`);
    process.stdout.write(`${'direct, one Postgres'.padEnd(28)}${String(result.direct.ms).padStart(8)}${String(result.direct.rowsPerSec).padStart(12)}\n`);
    process.stdout.write(`${'pgtide, 2 shards'.padEnd(28)}${String(result.proxy2Shards.ms).padStart(8)}${String(result.proxy2Shards.rowsPerSec).padStart(12)}\n`);
    process.stdout.write(`throughput ratio proxy/direct: ${result.ratio}\n`);
    return result;
  } finally {
    await cluster.stop();
  }
}
