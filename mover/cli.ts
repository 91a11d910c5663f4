// `node dist/mover/cli.js run <catalog-url> <job-id> [settings-json]`: run one job in its own process (operators, kill tests).
//
// The environment variable PGTIDE_MOVER_DIE_AT=<step>[#n] makes the process SIGKILL itself the n-th
// time (default 1st) the runner reaches that hook step (e.g. `chunk#3`, `cutover:fenceSource`):
// how the tests prove a job survives a kill at any point.
import { Catalog } from '../config/catalog.js';
import { Mover, type MoverSettings } from './mover.js';

async function main(): Promise<void> {
  const [cmd, url, idText, settingsJson] = process.argv.slice(2);
  if (cmd !== 'run' || !url || !idText) {
    process.stderr.write('usage: node dist/mover/cli.js run <catalog-url> <job-id> [settings-json]\n');
    process.exit(2);
  }
  const dieAt = process.env.PGTIDE_MOVER_DIE_AT;
  const [dieStep, dieNth] = dieAt ? [dieAt.split('#')[0]!, Number(dieAt.split('#')[1] ?? 1)] : [null, 0];
  let seen = 0;
  const catalog = await Catalog.open(url);
  const settings = settingsJson ? (JSON.parse(settingsJson) as Partial<MoverSettings>) : {};
  const mover = new Mover({
    catalog,
    settings,
    hooks: {
      onStep(_job, step) {
        if (process.env.PGTIDE_MOVER_TRACE) process.stderr.write(`step ${step}\n`);
        if (step === dieStep && ++seen >= dieNth) process.kill(process.pid, 'SIGKILL');
      },
    },
  });
  try {
    const job = await mover.runJob(Number(idText));
    process.stdout.write(`${JSON.stringify({ id: job.id, state: job.state, reason: job.reason, error: job.error })}\n`);
  } finally {
    await mover.close();
    await catalog.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`mover: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
