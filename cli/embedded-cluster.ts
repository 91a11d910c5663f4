// The demo cluster for `npm start`: one catalog server and N shard servers under one data directory.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { PgtideError } from '../config/errors.js';
import { freePort, startEmbeddedServer, type EmbeddedServer } from './embedded-server.js';

/** What a restart needs to find the same servers and credentials again (kept in cluster.json). */
interface ClusterFile {
  format: 1;
  superPassword: string;
  appUser: string;
  appPassword: string;
  database: string;
  catalogPort: number;
  shardPorts: number[];
}

export interface EmbeddedCluster {
  dataDir: string;
  catalogUrl: string;
  shardUrls: string[];
  appUser: string;
  appPassword: string;
  database: string;
  /**
   * Start one more shard server for ADD SHARD without a URL. It is written to cluster.json (so a
   * restart starts it again) only on commit(), once the catalog knows it; abort() stops it.
   */
  provisionShard(shardId: number): Promise<{ url: string; commit(): void; abort(): Promise<void> }>;
  stop(): Promise<void>;
}

const CATALOG_DB = 'pgtide_catalog';

function secret(): string {
  return randomBytes(12).toString('base64url');
}

async function portOrFree(preferred: number | undefined): Promise<number> {
  if (preferred === undefined) return freePort();
  const { createServer } = await import('node:net');
  const free = await new Promise<boolean>((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(preferred, '127.0.0.1', () => s.close(() => res(true)));
  });
  return free ? preferred : freePort();
}

async function ensureAppDatabase(server: EmbeddedServer, user: string, password: string, database: string): Promise<void> {
  const c = new pg.Client({ connectionString: server.url('postgres') });
  await c.connect();
  try {
    const role = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user]);
    const ident = pg.escapeIdentifier(user);
    if (role.rowCount === 0) await c.query(`CREATE ROLE ${ident} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
    else await c.query(`ALTER ROLE ${ident} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
    const db = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (db.rowCount === 0) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)} OWNER ${ident}`);
  } finally {
    await c.end();
  }
}

async function ensureDatabase(server: EmbeddedServer, database: string): Promise<void> {
  const c = new pg.Client({ connectionString: server.url('postgres') });
  await c.connect();
  try {
    const db = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (db.rowCount === 0) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await c.end();
  }
}

export interface EmbeddedClusterOptions {
  dataDir: string;
  shards: number;
  /** Postgres settings for the shard servers (e.g. max_prepared_transactions). */
  shardSettings?: Record<string, string | number>;
  onLog?: (line: string) => void;
}

export async function startEmbeddedCluster(opts: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  // As root, the servers run as the `postgres` user, which must be able to reach its folders.
  if (process.getuid?.() === 0) chmodSync(dataDir, 0o755);
  const fileName = join(dataDir, 'cluster.json');
  const file: ClusterFile = existsSync(fileName)
    ? (JSON.parse(readFileSync(fileName, 'utf8')) as ClusterFile)
    : { format: 1, superPassword: secret(), appUser: 'app', appPassword: secret(), database: 'app', catalogPort: 0, shardPorts: [] };
  // A restart keeps its shards; --shards only ever adds (shrinking is DRAIN SHARD's job).
  const shardCount = Math.max(opts.shards, file.shardPorts.length);
  file.catalogPort = await portOrFree(file.catalogPort || undefined);
  for (let i = 0; i < shardCount; i++) file.shardPorts[i] = await portOrFree(file.shardPorts[i]);
  writeFileSync(fileName, JSON.stringify(file, null, 2), { mode: 0o600 });

  const servers: EmbeddedServer[] = [];
  const stopAll = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
  };
  const start = async (dir: string, port: number, settings?: Record<string, string | number>) => {
    const s = await startEmbeddedServer({ dataDir: join(dataDir, dir), port, user: 'postgres', password: file.superPassword, settings, onLog: opts.onLog });
    servers.push(s);
    return s;
  };
  const shardSettings = { max_prepared_transactions: 64, ...opts.shardSettings };
  try {
    const catalog = await start('catalog', file.catalogPort);
    await ensureDatabase(catalog, CATALOG_DB);
    const shards = await Promise.all(file.shardPorts.map((port, i) => start(`shard-${i}`, port, shardSettings)));
    await Promise.all(shards.map((s) => ensureAppDatabase(s, file.appUser, file.appPassword, file.database)));
    const shardUrl = (port: number) =>
      `postgres://${file.appUser}:${encodeURIComponent(file.appPassword)}@127.0.0.1:${port}/${file.database}`;
    return {
      dataDir,
      catalogUrl: catalog.url(CATALOG_DB),
      shardUrls: file.shardPorts.map(shardUrl),
      appUser: file.appUser,
      appPassword: file.appPassword,
      database: file.database,
      async provisionShard(shardId) {
        // A restart hands cluster.json's servers to the catalog by position (config shards[i] is
        // shard i), so an embedded server must get the id equal to its position.
        const i = file.shardPorts.length;
        if (shardId !== i) {
          throw new PgtideError('EMBEDDED_ID_MISMATCH', `the embedded cluster has servers for shards 0…${i - 1}, but the next shard id is ${shardId} (shards were added by URL)`, {
            sqlstate: '55000', hint: "give the new server's URL: ADD SHARD 'postgres://…'",
          });
        }
        const port = await freePort();
        const s = await start(`shard-${i}`, port, shardSettings);
        try {
          await ensureAppDatabase(s, file.appUser, file.appPassword, file.database);
        } catch (err) {
          await s.stop().catch(() => {});
          throw err;
        }
        return {
          url: shardUrl(port),
          commit() {
            file.shardPorts[i] = port;
            writeFileSync(fileName, JSON.stringify(file, null, 2), { mode: 0o600 });
          },
          async abort() {
            const at = servers.indexOf(s);
            if (at >= 0) servers.splice(at, 1);
            await s.stop();
          },
        };
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
