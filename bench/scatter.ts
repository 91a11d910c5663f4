// Scatter ORDER BY … LIMIT 100 over 1 million rows on 2 shards through the proxy vs the same query on one Postgres holding all rows.
//
// The rows are loaded straight into the shards by hash ownership (the partition ranges of the
// proxy's routing table), and the single-server copy lives in shard 0's database as another
// table, so both sides run on the same Postgres build on the same machine. Queries alternate
// between the two sides, one at a time; latency is per query as the client sees it.
import { performance } from 'node:perf_hooks';
import { startTestCluster } from '../test/helpers/cluster.js';

const ROWS = 1_000_000;
const WARMUP = 5;
const RUNS = 40;

const QUERIES: { name: string; sql: (t: string) => string }[] = [
  { name: 'ORDER BY score DESC LIMIT 100 (top-N sort, no index)', sql: (t) => `SELECT id, score, name FROM ${t} ORDER BY score DESC, id LIMIT 100` },
  { name: 'ORDER BY id LIMIT 100 OFFSET 1000 (index)', sql: (t) => `SELECT id, score, name FROM ${t} ORDER BY id LIMIT 100 OFFSET 1000` },
  { name: 'GROUP BY grp, avg (1000 groups)', sql: (t) => `SELECT grp, count(*), avg(score) FROM ${t} GROUP BY grp ORDER BY grp LIMIT 100` },
];

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export async function run(): Promise<object> {
  const cluster = await startTestCluster({ shards: 2, poolSize: 2 });
  try {
    const app = await cluster.client();
    const cols = '(id bigint PRIMARY KEY, grp int NOT NULL, score int NOT NULL, name text NOT NULL)';
    await app.query(`CREATE TABLE bench_scatter ${cols}`);
    await (await cluster.admin()).query('SHARD TABLE bench_scatter BY (id)');
    const gen = `SELECT g, g % 1000, (g::int8 * 7919 % 1000003)::int, 'name-' || g FROM generate_series(1, ${ROWS}) g`;
    const routing = cluster.proxy.server.routingTable();
    const ks = routing.tables.find((t) => t.name === 'bench_scatter')!.keyspaceId!;
    const shards = [await cluster.shard(0), await cluster.shard(1)];
    await Promise.all(shards.map(async (s, i) => {
      const ranges = routing.partitions.filter((p) => p.keyspaceId === ks && p.shardId === i)
        .map((p) => `(hashint8extended(g::int8, 0) >= ${p.lo} AND hashint8extended(g::int8, 0) < ${p.hi})`).join(' OR ');
      await s.query(`INSERT INTO bench_scatter ${gen} WHERE ${ranges}`);
      await s.query('VACUUM ANALYZE bench_scatter');
    }));
    const single = shards[0]!;
    await single.query(`CREATE TABLE bench_single ${cols}`);
    await single.query(`INSERT INTO bench_single ${gen}`);
    await single.query('VACUUM ANALYZE bench_single');
    const perShard = await Promise.all(shards.map(async (s) => Number((await s.query('SELECT count(*) AS n FROM bench_scatter')).rows[0].n)));

    const results = [];
    for (const q of QUERIES) {
      const viaProxy = q.sql('bench_scatter');
      const direct = q.sql('bench_single');
      const expected = JSON.stringify((await single.query(direct)).rows);
      const got = JSON.stringify((await app.query(viaProxy)).rows);
      if (got !== expected) throw new Error(`scatter answer differs from the single server for: ${q.name}`);
      const times = { proxy: [] as number[], single: [] as number[] };
      for (let i = 0; i < WARMUP + RUNS; i++) {
        for (const [side, client, sql] of [['proxy', app, viaProxy], ['single', single, direct]] as const) {
          const t0 = performance.now();
          await client.query(sql);
          if (i >= WARMUP) times[side].push(performance.now() - t0);
        }
      }
      const row = {
        query: q.name,
        proxyMedianMs: quantile(times.proxy, 0.5), proxyP95Ms: quantile(times.proxy, 0.95),
        singleMedianMs: quantile(times.single, 0.5), singleP95Ms: quantile(times.single, 0.95),
      };
      results.push({ ...row, ratio: row.proxyMedianMs / row.singleMedianMs });
    }
    const fmt = (n: number) => n.toFixed(2).padStart(8);
    process.stdout.write(`${ROWS} rows, shards hold ${perShard.join(' + ')}; ${RUNS} runs each, alternating\n`);
    process.stdout.write(`${'query'.padEnd(54)} ${'proxy p50'.padStart(9)} ${'p95'.padStart(8)} ${'1 PG p50'.padStart(9)} ${'p95'.padStart(8)}  ratio\n`);
    for (const r of results) {
      process.stdout.write(`${r.query.padEnd(54)} ${fmt(r.proxyMedianMs)}  ${fmt(r.proxyP95Ms)} ${fmt(r.singleMedianMs)}  ${fmt(r.singleP95Ms)}  ${r.ratio.toFixed(2)}\n`);
    }
    return { rows: ROWS, shards: 2, rowsPerShard: perShard, runs: RUNS, results };
  } finally {
    await cluster.stop();
  }
}
