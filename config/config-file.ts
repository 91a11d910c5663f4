// Loads and validates the pgtide YAML config file; every error names the key and what is wrong.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { KeyType } from './types.js';

export type PoolMode = 'transaction' | 'session';

export interface UserConfig {
  name: string;
  /** Plaintext password, `md5…` hash or `SCRAM-SHA-256$…` secret. */
  password: string;
  /** May connect to the admin database `pgtide`. */
  admin: boolean;
}

export interface ShardedTableConfig {
  name: string;
  key: string;
  type: KeyType;
  /** Key space name: tables naming the same one share a partition map. Default: the key family. */
  keyspace?: string;
}

export interface ProxyConfig {
  listen: { host: string; port: number };
  /** The database name applications connect to (the shards' databases may be named differently). */
  database: string;
  users: UserConfig[];
  auth: 'scram-sha-256' | 'md5';
  tls?: { cert: string; key: string };
  pool: {
    mode: PoolMode;
    /** Server connections per shard and user. */
    size: number;
    /** How long a client may wait for a server connection, ms. */
    waitTimeoutMs: number;
    /** Close server connections idle longer than this, ms. */
    idleTimeoutMs: number;
    /** Share server connections between fast autocommit reads of many clients (transaction mode; proxy/pool/pipeline.ts). Opt-in, off by default. */
    pipelining?: boolean;
  };
  /** URL of the catalog database. */
  catalog: string;
  /** Shard URLs (the user and password in each are the ones the proxy logs in with). */
  shards: string[];
  tables: { sharded: ShardedTableConfig[]; reference: string[] };
  /** Partitions per new key space. */
  partitions: number;
  http: { host: string; port: number };
  /** Statement-shape route cache entries. */
  routeCacheSize: number;
  /** Transactions may span shards, committed with two-phase commit (shards need max_prepared_transactions > 0). */
  twoPhaseCommit?: boolean;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly key: string, problem: string) {
    super(`config: ${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const KEY_TYPES: readonly KeyType[] = ['int2', 'int4', 'int8', 'text', 'varchar', 'uuid'];
const KEY_TYPE_ALIASES: Record<string, KeyType> = {
  smallint: 'int2', integer: 'int4', int: 'int4', bigint: 'int8', 'character varying': 'varchar',
};

type Raw = Record<string, unknown>;

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function allowOnly(obj: Raw, path: string, keys: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw new ConfigError(path ? `${path}.${k}` : k, `unknown key (allowed: ${keys.join(', ')})`);
  }
}

function str(obj: Raw, key: string, path: string, fallback?: string): string {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(path, 'is required');
  }
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(path, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function int(obj: Raw, key: string, path: string, fallback: number, min: number, max: number): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(path, `must be an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw new ConfigError(path, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

function bool(obj: Raw, key: string, path: string, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(path, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function postgresUrl(v: string, path: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(path, `is not a URL: ${JSON.stringify(redactUrl(v))}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new ConfigError(path, `must be a postgres:// URL, got ${u.protocol}//`);
  if (!u.hostname) throw new ConfigError(path, 'has no host');
  if (u.pathname.length <= 1) throw new ConfigError(path, 'names no database (postgres://user:password@host:port/DATABASE)');
  return v;
}

/** A URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

export function normalizeKeyType(t: string, path: string): KeyType {
  const lower = t.toLowerCase();
  const k = (KEY_TYPE_ALIASES[lower] ?? lower) as KeyType;
  if (!KEY_TYPES.includes(k)) throw new ConfigError(path, `unsupported key type ${JSON.stringify(t)} (use one of ${KEY_TYPES.join(', ')})`);
  return k;
}

/** Validate an already-parsed config object. */
export function validateConfig(raw: unknown): ProxyConfig {
  if (!isObject(raw)) throw new ConfigError('(top level)', 'must be a mapping of keys to values');
  allowOnly(raw, '', ['listen', 'database', 'users', 'auth', 'tls', 'pool', 'catalog', 'shards', 'tables', 'partitions', 'http', 'route_cache_size', 'log_level', 'two_phase_commit']);

  const listenRaw = raw.listen ?? {};
  if (!isObject(listenRaw)) throw new ConfigError('listen', 'must be a mapping with host and port');
  allowOnly(listenRaw, 'listen', ['host', 'port']);
  const listen = { host: str(listenRaw, 'host', 'listen.host', '127.0.0.1'), port: int(listenRaw, 'port', 'listen.port', 6432, 1, 65535) };

  const database = str(raw, 'database', 'database');

  if (!Array.isArray(raw.users) || raw.users.length === 0) throw new ConfigError('users', 'must list at least one user (name, password)');
  const users: UserConfig[] = raw.users.map((u: unknown, i: number) => {
    const p = `users[${i}]`;
    if (!isObject(u)) throw new ConfigError(p, 'must be a mapping with name and password');
    allowOnly(u, p, ['name', 'password', 'admin']);
    const admin = u.admin ?? false;
    if (typeof admin !== 'boolean') throw new ConfigError(`${p}.admin`, 'must be true or false');
    return { name: str(u, 'name', `${p}.name`), password: str(u, 'password', `${p}.password`), admin };
  });
  const seen = new Set<string>();
  for (const [i, u] of users.entries()) {
    if (seen.has(u.name)) throw new ConfigError(`users[${i}].name`, `duplicate user ${JSON.stringify(u.name)}`);
    seen.add(u.name);
  }

  const auth = str(raw, 'auth', 'auth', 'scram-sha-256');
  if (auth !== 'scram-sha-256' && auth !== 'md5') throw new ConfigError('auth', `must be scram-sha-256 or md5, got ${JSON.stringify(auth)}`);

  let tls: ProxyConfig['tls'];
  if (raw.tls !== undefined) {
    if (!isObject(raw.tls)) throw new ConfigError('tls', 'must be a mapping with cert and key (file paths)');
    allowOnly(raw.tls, 'tls', ['cert', 'key']);
    tls = { cert: str(raw.tls, 'cert', 'tls.cert'), key: str(raw.tls, 'key', 'tls.key') };
  }

  const poolRaw = raw.pool ?? {};
  if (!isObject(poolRaw)) throw new ConfigError('pool', 'must be a mapping');
  allowOnly(poolRaw, 'pool', ['mode', 'size', 'wait_timeout_ms', 'idle_timeout_ms', 'pipelining']);
  const mode = str(poolRaw, 'mode', 'pool.mode', 'transaction');
  if (mode !== 'transaction' && mode !== 'session') throw new ConfigError('pool.mode', `must be transaction or session, got ${JSON.stringify(mode)}`);
  const pool = {
    mode: mode as PoolMode,
    size: int(poolRaw, 'size', 'pool.size', 20, 1, 10000),
    waitTimeoutMs: int(poolRaw, 'wait_timeout_ms', 'pool.wait_timeout_ms', 30000, 1, 3600000),
    idleTimeoutMs: int(poolRaw, 'idle_timeout_ms', 'pool.idle_timeout_ms', 600000, 1000, 86400000),
    pipelining: bool(poolRaw, 'pipelining', 'pool.pipelining', true),
  };

  const catalog = postgresUrl(str(raw, 'catalog', 'catalog'), 'catalog');

  if (!Array.isArray(raw.shards) || raw.shards.length === 0) throw new ConfigError('shards', 'must list at least one shard URL');
  const shards = raw.shards.map((s: unknown, i: number) => {
    if (typeof s !== 'string') throw new ConfigError(`shards[${i}]`, 'must be a postgres:// URL string');
    return postgresUrl(s, `shards[${i}]`);
  });

  const tablesRaw = raw.tables ?? {};
  if (!isObject(tablesRaw)) throw new ConfigError('tables', 'must be a mapping with sharded and reference lists');
  allowOnly(tablesRaw, 'tables', ['sharded', 'reference']);
  const shardedRaw = tablesRaw.sharded ?? [];
  if (!Array.isArray(shardedRaw)) throw new ConfigError('tables.sharded', 'must be a list');
  const sharded: ShardedTableConfig[] = shardedRaw.map((t: unknown, i: number) => {
    const p = `tables.sharded[${i}]`;
    if (!isObject(t)) throw new ConfigError(p, 'must be a mapping with name, key and type');
    allowOnly(t, p, ['name', 'key', 'type', 'keyspace']);
    const keyspace = t.keyspace === undefined ? undefined : str(t, 'keyspace', `${p}.keyspace`);
    return {
      name: str(t, 'name', `${p}.name`).toLowerCase(),
      key: str(t, 'key', `${p}.key`).toLowerCase(),
      type: normalizeKeyType(str(t, 'type', `${p}.type`), `${p}.type`),
      ...(keyspace ? { keyspace } : {}),
    };
  });
  const referenceRaw = tablesRaw.reference ?? [];
  if (!Array.isArray(referenceRaw)) throw new ConfigError('tables.reference', 'must be a list of table names');
  const reference = referenceRaw.map((t: unknown, i: number) => {
    if (typeof t !== 'string' || !t) throw new ConfigError(`tables.reference[${i}]`, 'must be a table name');
    return t.toLowerCase();
  });
  for (const r of reference) {
    if (sharded.some((s) => s.name === r)) throw new ConfigError('tables.reference', `${r} is also listed as sharded`);
  }

  const httpRaw = raw.http ?? {};
  if (!isObject(httpRaw)) throw new ConfigError('http', 'must be a mapping with host and port');
  allowOnly(httpRaw, 'http', ['host', 'port']);

  return {
    listen,
    database,
    users,
    auth,
    ...(tls ? { tls } : {}),
    pool,
    catalog,
    shards,
    tables: { sharded, reference },
    partitions: int(raw, 'partitions', 'partitions', 8, 1, 4096),
    http: { host: str(httpRaw, 'host', 'http.host', '127.0.0.1'), port: int(httpRaw, 'port', 'http.port', 9930, 0, 65535) },
    routeCacheSize: int(raw, 'route_cache_size', 'route_cache_size', 10000, 16, 10_000_000),
    twoPhaseCommit: bool(raw, 'two_phase_commit', 'two_phase_commit', false),
    logLevel: str(raw, 'log_level', 'log_level', 'info'),
  };
}

export function parseConfigText(text: string): ProxyConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const where = err.linePos?.[0] ? `line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '(syntax)';
      throw new ConfigError(where, `invalid YAML: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
  return validateConfig(raw);
}

export function loadConfigFile(path: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${path}: ${(err as Error).message}`);
  }
  return parseConfigText(text);
}
