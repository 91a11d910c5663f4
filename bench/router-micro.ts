// Micro-benchmark of the per-query routing cost: analyze() (cache hit: lexer only) + resolveShards().
import { fileURLToPath } from 'node:url';
import { defaultPartitions, RoutingIndex } from '../config/routing.js';
import type { RoutingTable } from '../config/types.js';
import { lex, resolveShards, Router } from '../proxy/router/index.js';

const ITERATIONS = 1_000_000;
const WARMUP = 100_000;
const SQL = 'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;';

function index(): RoutingIndex {
  const table: RoutingTable = {
    version: 1,
    shards: [0, 1, 2, 3].map((id) => ({ id, url: '', state: 'active' as const })),
    keyspaces: [{ id: 1, name: 'ints', family: 'int' }],
    tables: [{ name: 'pgbench_accounts', kind: 'sharded', keyColumn: 'aid', keyType: 'int4', keyspaceId: 1 }],
    partitions: defaultPartitions(1, 64, [0, 1, 2, 3]).map((p, i) => ({ ...p, id: i, state: 'active' as const })),
  };
  return new RoutingIndex(table);
}

/** ns per call of fn, best of 5 rounds (the machine is shared; the minimum is the signal). */
function measure(fn: (i: number) => unknown): number {
  for (let i = 0; i < WARMUP; i++) fn(i);
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS / 5; i++) fn(i);
    const ns = Number(process.hrtime.bigint() - t0) / (ITERATIONS / 5);
    best = Math.min(best, ns);
  }
  return best;
}

export async function run(): Promise<object> {
  await Router.init();
  const idx = index();
  const router = new Router(() => idx);
  let sink = 0;
  // Same text every time (the pgbench case) and a varying key (distinct strings, same shape).
  const texts = Array.from({ length: 1024 }, (_, i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i * 7919};`);
  const hitSame = measure(() => {
    const r = router.analyze(SQL);
    const s = resolveShards(r.analysis.plans[0]!, r.literals, null, idx);
    sink += s === 'all' ? 0 : s[0]!;
  });
  const hitVarying = measure((i) => {
    const r = router.analyze(texts[i & 1023]!);
    const s = resolveShards(r.analysis.plans[0]!, r.literals, null, idx);
    sink += s === 'all' ? 0 : s[0]!;
  });
  const lexOnly = measure((i) => {
    sink += lex(texts[i & 1023]!).literals.length;
  });
  const resolveOnly = (() => {
    const r = router.analyze(SQL);
    return measure(() => {
      const s = resolveShards(r.analysis.plans[0]!, r.literals, null, idx);
      sink += s === 'all' ? 0 : s[0]!;
    });
  })();
  let missNs = 0;
  {
    const n = 2000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      router.invalidate();
      router.analyze(texts[i & 1023]!);
    }
    missNs = Number(process.hrtime.bigint() - t0) / n;
  }
  const result = {
    sql: SQL,
    ns_per_op: { hit_same_text: Math.round(hitSame), hit_varying_key: Math.round(hitVarying), lex_only: Math.round(lexOnly), resolve_only: Math.round(resolveOnly), miss_parse: Math.round(missNs) },
    iterations: ITERATIONS,
    sink,
  };
  process.stdout.write(`${'case'.padEnd(20)} ns/op\n`);
  for (const [k, v] of Object.entries(result.ns_per_op)) process.stdout.write(`${k.padEnd(20)} ${v}\n`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  run().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
