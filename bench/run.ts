// `npm run bench [-- name…]`: runs the named benchmarks (default: proxy), prints tables, writes JSON to bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type BenchModule = { run(opts?: object): Promise<object> };

const BENCHES: Record<string, () => Promise<BenchModule>> = {
  proxy: () => import('./proxy/pgbench.js'),
  router: () => import('./router-micro.js'),
  copy: () => import('./copy.js'),
  scatter: () => import('./scatter.js'),
  predictor: () => import('./predictor/run.js' as string) as Promise<BenchModule>,
  planner: () => import('./planner/run.js' as string) as Promise<BenchModule>,
  mover: () => import('./mover.js'),
  'training-impact': () => import('./training-impact.js'),
};

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const selected = names.length > 0 ? names : ['proxy'];
  for (const name of selected) {
    const load = BENCHES[name];
    if (!load) {
      process.stderr.write(`unknown benchmark ${JSON.stringify(name)}; known: ${Object.keys(BENCHES).join(', ')}\n`);
      process.exit(2);
    }
    process.stdout.write(`\n== bench: ${name} ==\n`);
    const result = await (await load()).run();
    const dir = join(process.cwd(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ bench: name, at: new Date().toISOString(), ...result }, null, 2));
    process.stdout.write(`wrote ${file}\n`);
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
