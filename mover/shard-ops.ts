// Shard-level operations: ADD SHARD, DRAIN SHARD, REMOVE SHARD, ALTER SHARD … max_bytes, VERIFY PARTITION.
//
// Shard lifecycle (pgtide.shards.state):
//
//   (ADD SHARD) → joining → active → draining → removed
//                    └──────────────────────────────┘ (REMOVE SHARD of a joining shard that never finished)
//
// * joining: registered, tables created, every proxy broadcasts DDL and reference-table writes to
//   it, but no reads go there until its reference tables are copied (new-shard.ts); then active.
//   ADD SHARD with the same URL finishes a joining shard left by an interrupted attempt.
// * draining: DRAIN SHARD plans one move job per partition to the other active shards (balanced
//   by placement.ts, under their max_bytes); the leader's job loop runs them one at a time. No
//   move, split-and-move or plan ever targets a shard that is not active (Mover.startMove, planner).
// * removed: REMOVE SHARD once it owns no partition and no job uses it. The row stays (ids are
//   never reused: job history and logs keep naming it).
import pg from 'pg';
import { redactUrl } from '../config/config-file.js';
import { relationKey } from '../config/routing.js';
import type { ShardState } from '../config/types.js';
import { MoverError, unknownShard } from './errors.js';
import type { Mover } from './mover.js';
import { checkNewServer, createMissingTables, syncReferenceTable, type CatalogTable } from './new-shard.js';
import { placePartitions, type PlacementTarget } from './placement.js';
import { capacityRefusal, fmtBytes, shardRoom, shardTableBytes } from './sizes.js';
import { verifyPartition, type PartitionVerification } from './verify-partition.js';

/** A server started for ADD SHARD without a URL (the embedded cluster); kept only once registered. */
export interface ProvisionedShard {
  url: string;
  /** The shard is in the catalog: keep the server across restarts. */
  commit(): void;
  /** Registration failed: stop the server. */
  abort(): Promise<void>;
}

export type ShardProvisioner = (shardId: number) => Promise<ProvisionedShard>;

export interface ShardOpsOptions {
  mover: Mover;
  provision?: ShardProvisioner;
  /** Lock wait of one attempt to copy a reference table, ms. */
  lockTimeoutMs?: number;
  /** Attempts to copy one reference table while writes go on. */
  referenceAttempts?: number;
  /** How long every live proxy gets to acknowledge the joining shard, ms. */
  ackTimeoutMs?: number;
}

export interface ShardRow {
  id: number;
  url: string;
  state: ShardState;
  maxBytes: number | null;
}

export interface AddShardResult {
  shardId: number;
  url: string;
  version: number;
  notes: string[];
}

export interface DrainShardResult {
  shardId: number;
  version: number | null;
  jobs: { jobId: number; partitionId: number; targetShard: number; bytes: number }[];
  notes: string[];
}

const busy = (code: string, message: string, hint?: string) => new MoverError(code, message, { sqlstate: '55006', ...(hint ? { hint } : {}) });
const notReady = (code: string, message: string, hint?: string) => new MoverError(code, message, { sqlstate: '55000', ...(hint ? { hint } : {}) });

/** host:port/database of a postgres URL (what makes two URLs the same server), or 22023. */
export function serverKey(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MoverError('BAD_URL', `not a URL: ${redactUrl(url)}`, { sqlstate: '22023', hint: "ADD SHARD 'postgres://user:password@host:port/database'" });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new MoverError('BAD_URL', `a shard URL must start with postgres://, got ${u.protocol}//`, { sqlstate: '22023' });
  if (!u.hostname) throw new MoverError('BAD_URL', `the URL ${redactUrl(url)} names no host`, { sqlstate: '22023' });
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!db) throw new MoverError('BAD_URL', `the URL ${redactUrl(url)} names no database (postgres://user:password@host:port/DATABASE)`, { sqlstate: '22023' });
  return `${u.hostname.toLowerCase()}:${u.port || '5432'}/${db}`;
}

function safeKey(url: string): string | null {
  try {
    return serverKey(url);
  } catch {
    return null;
  }
}

export class ShardOps {
  constructor(private readonly o: ShardOpsOptions) {}

  private get m(): Mover {
    return this.o.mover;
  }

  async shards(): Promise<ShardRow[]> {
    const { rows } = await this.m.catalog.pool.query<{ id: number; url: string; state: ShardState; max_bytes: string | null }>(
      'SELECT id, url, state, max_bytes::text AS max_bytes FROM pgtide.shards ORDER BY id');
    return rows.map((r) => ({ id: r.id, url: r.url, state: r.state, maxBytes: r.max_bytes === null ? null : Number(r.max_bytes) }));
  }

  private async shard(id: number): Promise<ShardRow> {
    if (!Number.isSafeInteger(id)) throw unknownShard(id);
    const s = (await this.shards()).find((x) => x.id === id);
    if (!s) throw unknownShard(id);
    return s;
  }

  private async catalogTables(): Promise<CatalogTable[]> {
    const { rows } = await this.m.catalog.pool.query<CatalogTable>('SELECT name, kind FROM pgtide.tables ORDER BY kind DESC, name');
    return rows;
  }

  // ---------------------------------------------------------------- ADD SHARD

  /** ADD SHARD ['url']: register a server (or, without a URL, one the provisioner starts) as a new shard. */
  async addShard(given?: string): Promise<AddShardResult> {
    const notes: string[] = [];
    const all = await this.shards();
    let id: number;
    let url: string;
    let resuming = false;
    let provisioned: ProvisionedShard | null = null;
    const joining = all.find((s) => s.state === 'joining');
    if (given !== undefined) {
      const key = serverKey(given);
      const same = all.find((s) => s.state !== 'removed' && safeKey(s.url) === key);
      if (same && same.state !== 'joining') {
        throw new MoverError('SHARD_EXISTS', `the server ${key} is already shard ${same.id} (${same.state})`, { sqlstate: '42710' });
      }
      resuming = same !== undefined;
      id = same?.id ?? nextShardId(all);
      url = same?.url ?? given;
    } else if (joining) {
      // An earlier ADD SHARD stopped half way: finish that one first.
      resuming = true;
      id = joining.id;
      url = joining.url;
    } else {
      if (!this.o.provision) {
        throw new MoverError('NO_PROVISIONER', 'ADD SHARD without a URL starts a server only in the embedded cluster (npm start), from its first proxy', {
          sqlstate: '0A000', hint: "give the new server's URL: ADD SHARD 'postgres://user:password@host:port/database'",
        });
      }
      id = nextShardId(all);
      provisioned = await this.o.provision(id);
      url = provisioned.url;
    }
    if (resuming) notes.push(`shard ${id} was still joining: finishing it`);
    try {
      const dst = await connectNew(url);
      try {
        const primary = all.filter((s) => s.state === 'active' || s.state === 'draining').map((s) => s.id).sort((a, b) => a - b)[0];
        if (primary === undefined) throw notReady('NO_SHARDS', 'there is no active shard to copy the schema from');
        const src = await this.m.shards.pool(primary);
        const dataShards = all.filter((s) => s.state === 'active' || s.state === 'draining').map((s) => s.id);
        const floorOf = (seq: string) => this.sequenceFloor(seq, dataShards);
        const first = await checkNewServer(src, dst, await this.catalogTables(), { allowReferenceRows: resuming });
        await createMissingTables(src, dst, first.missing, id, floorOf);
        let version: number;
        if (resuming) {
          version = await this.m.catalog.routingVersion();
        } else {
          version = (await this.m.catalog.change(`add shard ${id}: joining`, async (c) => {
            const next = await c.query<{ n: number }>('SELECT coalesce(max(id) + 1, 0)::int AS n FROM pgtide.shards');
            if (next.rows[0]!.n !== id) throw notReady('CONCURRENT_ADD', `another shard was registered while shard ${id} was being prepared; nothing was registered`, 'run ADD SHARD again');
            await c.query("INSERT INTO pgtide.shards (id, url, state) VALUES ($1, $2, 'joining')", [id, url]);
            return true;
          }))!;
          provisioned?.commit();
          provisioned = null;
        }
        await this.waitForAcks(version, id);
        // Tables declared or created between the first check and the acks: every later DDL reaches the shard.
        const second = await checkNewServer(src, dst, await this.catalogTables(), { allowReferenceRows: true });
        await createMissingTables(src, dst, second.missing, id, floorOf);
        const created = [...first.missing, ...second.missing];
        if (created.length > 0) notes.push(`created ${created.map((t) => t.name).join(', ')} on shard ${id}`);
        const refs = (await this.catalogTables()).filter((t) => t.kind === 'reference');
        if (refs.length > 0) {
          const srcClient = await this.m.shards.client(primary);
          try {
            for (const t of refs) {
              const r = await syncReferenceTable(srcClient, dst, t.name, { lockTimeoutMs: this.o.lockTimeoutMs ?? 2000, attempts: this.o.referenceAttempts ?? 8 });
              notes.push(`reference table ${t.name}: ${r.rows} rows, equal to shard ${primary}'s copy`);
            }
          } finally {
            await srcClient.end().catch(() => {});
          }
        }
        const prepared = await dst.query<{ n: number }>("SELECT current_setting('max_prepared_transactions')::int AS n");
        if (prepared.rows[0]?.n === 0) {
          notes.push(`max_prepared_transactions is 0 on shard ${id}: a transaction that spans it and another shard (two-phase commit) will fail there`);
        }
        const active = await this.m.catalog.change(`add shard ${id}: active`, async (c) => {
          const r = await c.query("UPDATE pgtide.shards SET state = 'active' WHERE id = $1 AND state = 'joining'", [id]);
          if (r.rowCount !== 1) throw notReady('SHARD_CHANGED', `shard ${id} stopped being joining while it was prepared (REMOVE SHARD?); it was not activated`);
          return true;
        });
        return { shardId: id, url, version: active!, notes };
      } finally {
        await dst.end().catch(() => {});
      }
    } catch (err) {
      if (provisioned) await provisioned.abort().catch(() => {});
      throw err;
    }
  }

  private async waitForAcks(version: number, shardId: number): Promise<void> {
    try {
      await this.m.routing.installVersion(version, this.o.ackTimeoutMs ?? 10_000);
    } catch (err) {
      throw notReady('NOT_ACKNOWLEDGED', `shard ${shardId} is registered as joining, but not every live proxy routes by version ${version} yet: ${(err as Error).message}`,
        'its reference tables are copied only once every proxy sends it their writes; run ADD SHARD again to finish');
    }
  }

  /** The highest value any data shard handed out from `seq` (a sharded table's per-shard sequence). */
  private async sequenceFloor(seq: string, shardIds: number[]): Promise<bigint> {
    let floor = 0n;
    for (const id of shardIds) {
      try {
        const rows = await this.m.shards.query<{ v: string }>(id, `SELECT (CASE WHEN is_called THEN last_value ELSE last_value - 1 END)::text AS v FROM ${seq}`);
        const v = BigInt(rows[0]?.v ?? '0');
        if (v > floor) floor = v;
      } catch {
        // No such sequence there, or the shard is down: the new shard's own residue still keeps its values apart from that shard's.
      }
    }
    return floor;
  }

  // ---------------------------------------------------------------- DRAIN SHARD

  /** DRAIN SHARD n: mark it draining and plan one move per partition to the other active shards. */
  async drainShard(id: number): Promise<DrainShardResult> {
    const s = await this.shard(id);
    if (s.state !== 'active' && s.state !== 'draining') throw notReady('SHARD_NOT_ACTIVE', `shard ${id} is ${s.state}; only an active shard can be drained`);
    const all = await this.shards();
    const targets = all.filter((x) => x.id !== id && x.state === 'active');
    if (targets.length === 0) {
      throw notReady('LAST_SHARD', `shard ${id} is the last active shard: its partitions would have nowhere to go`, 'ADD SHARD first, then DRAIN SHARD');
    }
    const pool = this.m.catalog.pool;
    const incoming = await pool.query<{ id: number; partition_id: number; state: string }>(
      "SELECT id, partition_id, state FROM pgtide.jobs WHERE target_shard = $1 AND state NOT IN ('done', 'rolled_back') ORDER BY id", [id]);
    if (incoming.rows.length > 0) {
      const j = incoming.rows[0]!;
      throw busy('JOBS_INCOMING', `job ${j.id} (${j.state}) is moving partition ${j.partition_id} onto shard ${id}${incoming.rows.length > 1 ? ` (and ${incoming.rows.length - 1} more job${incoming.rows.length > 2 ? 's' : ''})` : ''}; nothing was changed`,
        `wait for it or CANCEL JOB ${j.id}, then DRAIN SHARD ${id}`);
    }
    const parts = await pool.query<{ id: number; keyspace_id: number; job: number | null; job_state: string | null; job_target: number | null }>(
      `SELECT p.id, p.keyspace_id, j.id AS job, j.state AS job_state, j.target_shard AS job_target FROM pgtide.partitions p
         LEFT JOIN pgtide.jobs j ON j.partition_id = p.id AND j.state NOT IN ('done', 'rolled_back')
        WHERE p.shard_id = $1 ORDER BY p.id`, [id]);
    const notes: string[] = [];
    for (const p of parts.rows) {
      if (p.job !== null) notes.push(`partition ${p.id} is already in job ${p.job} (${p.job_state}, to shard ${p.job_target})${p.job_state === 'paused' || p.job_state === 'failed' ? `: RESUME JOB ${p.job} or CANCEL JOB ${p.job}` : ''}`);
    }
    const toMove = parts.rows.filter((p) => p.job === null);
    const bytes = new Map<number, number>();
    for (const ks of new Set(toMove.map((p) => p.keyspace_id))) {
      for (const [pid, size] of await this.m.partitionSizesOn(id, ks)) bytes.set(pid, size.bytes);
    }
    const sharded = (await this.catalogTables()).filter((t) => t.kind === 'sharded').map((t) => t.name);
    const counts = await pool.query<{ shard_id: number; n: number }>('SELECT shard_id, count(*)::int AS n FROM pgtide.partitions GROUP BY shard_id');
    const placementTargets: PlacementTarget[] = [];
    for (const t of targets) {
      const room = await shardRoom(pool, () => this.m.shards.pool(t.id), t.id);
      placementTargets.push({
        shardId: t.id, partitions: counts.rows.find((r) => r.shard_id === t.id)?.n ?? 0,
        bytes: await shardTableBytes(await this.m.shards.pool(t.id), sharded),
        maxBytes: room.maxBytes, usedBytes: room.usedBytes, reservedBytes: room.reservedBytes,
      });
    }
    const placement = placePartitions(toMove.map((p) => ({ partitionId: p.id, bytes: bytes.get(p.id) ?? 0 })), placementTargets);
    if (placement.unplaced.length > 0) {
      const u = placement.unplaced[0]!;
      const why = await Promise.all(targets.map(async (t) => capacityRefusal(await shardRoom(pool, () => this.m.shards.pool(t.id), t.id), u.partitionId, u.bytes)?.message ?? `shard ${t.id} has room`));
      throw new MoverError('TARGET_FULL', `no active shard has room for partition ${u.partitionId} of shard ${id} (about ${fmtBytes(u.bytes)})${placement.unplaced.length > 1 ? ` nor for ${placement.unplaced.length - 1} more` : ''}; nothing was changed: ${why.join('; ')}`, {
        sqlstate: '53100', hint: 'ADD SHARD, or raise a shard\'s limit: ALTER SHARD n SET max_bytes = \'…\'',
      });
    }
    let version: number | null = null;
    if (s.state === 'active') {
      version = await this.m.catalog.change(`drain shard ${id}`, async (c) => {
        const r = await c.query("UPDATE pgtide.shards SET state = 'draining' WHERE id = $1 AND state = 'active'", [id]);
        if (r.rowCount !== 1) throw notReady('SHARD_CHANGED', `shard ${id} changed state meanwhile; nothing was changed`);
        return true;
      });
    }
    const jobs: DrainShardResult['jobs'] = [];
    for (const a of placement.assignments) {
      try {
        const job = await this.m.startMove(a.partitionId, a.shardId);
        jobs.push({ jobId: job.id, partitionId: a.partitionId, targetShard: a.shardId, bytes: a.bytes });
      } catch (err) {
        const e = err as MoverError;
        const planned = jobs.length > 0 ? `jobs ${jobs.map((j) => j.jobId).join(', ')} are planned; ` : '';
        throw new MoverError(e.code ?? 'DRAIN_INCOMPLETE', `shard ${id} is draining; ${planned}partition ${a.partitionId} could not be planned: ${e.message}`, {
          sqlstate: typeof e.sqlstate === 'string' ? e.sqlstate : 'XX000', hint: `DRAIN SHARD ${id} again plans what is left`, cause: err,
        });
      }
    }
    if (id === Math.min(...all.filter((x) => x.state === 'active' || x.state === 'draining').map((x) => x.id))) {
      notes.push(`shard ${id} is also where unsharded tables live; REMOVE SHARD ${id} refuses while any of them holds rows`);
    }
    return { shardId: id, version, jobs, notes };
  }

  // ---------------------------------------------------------------- REMOVE SHARD

  /** REMOVE SHARD n: only once it owns no partition, no job uses it, and no unsharded table holds rows there. */
  async removeShard(id: number): Promise<{ version: number; notes: string[] }> {
    const s = await this.shard(id);
    if (s.state === 'removed') throw notReady('ALREADY_REMOVED', `shard ${id} is already removed`);
    const pool = this.m.catalog.pool;
    const owned = await pool.query<{ id: number }>('SELECT id FROM pgtide.partitions WHERE shard_id = $1 ORDER BY id', [id]);
    if (owned.rows.length > 0) {
      const list = owned.rows.slice(0, 10).map((r) => r.id).join(', ') + (owned.rows.length > 10 ? ', …' : '');
      throw busy('SHARD_NOT_EMPTY', `shard ${id} still owns ${owned.rows.length} partition${owned.rows.length === 1 ? '' : 's'} (${list}); nothing was changed`,
        s.state === 'draining' ? 'its move jobs are under way: SHOW JOBS' : `DRAIN SHARD ${id} moves them to the other shards`);
    }
    const jobs = await pool.query<{ id: number }>("SELECT id FROM pgtide.jobs WHERE (source_shard = $1 OR target_shard = $1) AND state NOT IN ('done', 'rolled_back') ORDER BY id", [id]);
    if (jobs.rows.length > 0) throw busy('SHARD_IN_JOB', `job ${jobs.rows.map((r) => r.id).join(', ')} still uses shard ${id}; nothing was changed`, 'wait for it to finish or CANCEL JOB it');
    const all = await this.shards();
    if (s.state !== 'joining' && !all.some((x) => x.id !== id && x.state === 'active')) throw notReady('LAST_SHARD', `shard ${id} is the last active shard`);
    const notes: string[] = [];
    try {
      const c = this.m.shards;
      const tables = await c.query<{ nsp: string; rel: string; q: string }>(id,
        `SELECT n.nspname AS nsp, c.relname AS rel, c.oid::regclass::text AS q FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgtide_mover') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 3`);
      const catalogTables = await this.catalogTables();
      const known = new Map(catalogTables.map((t) => [t.name, t.kind]));
      const holding: string[] = [];
      const strays: string[] = [];
      for (const t of tables) {
        const has = (await c.query<{ has: boolean }>(id, `SELECT EXISTS (SELECT 1 FROM ${t.q}) AS has`))[0]?.has;
        if (!has) continue;
        const kind = known.get(relationKey(t.nsp, t.rel));
        if (kind === undefined) holding.push(t.q);
        else if (kind === 'sharded') strays.push(t.q);
      }
      if (holding.length > 0) {
        throw busy('SHARD_HOLDS_DATA', `shard ${id} holds rows of tables pgtide does not shard: ${holding.join(', ')}; nothing was changed`,
          'unsharded tables are served from the lowest-numbered shard only; SHARD TABLE or REFERENCE TABLE them (or copy them elsewhere) first');
      }
      if (strays.length > 0) notes.push(`sharded tables ${strays.join(', ')} still hold rows on shard ${id} outside any of its partitions (strays, left in place)`);
    } catch (err) {
      if (err instanceof MoverError) throw err;
      notes.push(`could not look at shard ${id}'s tables (${(err as Error).message}); removed without that check`);
    }
    const version = await this.m.catalog.change(`remove shard ${id}`, async (c) => {
      const again = await c.query('SELECT 1 FROM pgtide.partitions WHERE shard_id = $1 LIMIT 1', [id]);
      if (again.rows.length > 0) throw busy('SHARD_NOT_EMPTY', `shard ${id} owns a partition again; nothing was changed`);
      await c.query("UPDATE pgtide.shards SET state = 'removed' WHERE id = $1", [id]);
      return true;
    });
    return { version: version!, notes };
  }

  // ---------------------------------------------------------------- ALTER SHARD

  /** ALTER SHARD n SET max_bytes = b | RESET max_bytes (null). Not a routing change. */
  async setMaxBytes(id: number, maxBytes: number | null): Promise<{ previous: number | null }> {
    const s = await this.shard(id);
    if (maxBytes !== null && (!Number.isSafeInteger(maxBytes) || maxBytes <= 0)) {
      throw new MoverError('BAD_MAX_BYTES', `max_bytes must be a positive number of bytes, got ${maxBytes}`, { sqlstate: '22023' });
    }
    await this.m.catalog.pool.query('UPDATE pgtide.shards SET max_bytes = $2 WHERE id = $1', [id, maxBytes]);
    return { previous: s.maxBytes };
  }

  // ---------------------------------------------------------------- VERIFY PARTITION

  verifyPartition(id: number): Promise<PartitionVerification> {
    return verifyPartition(this.m, id);
  }
}

function nextShardId(all: ShardRow[]): number {
  return all.reduce((a, s) => Math.max(a, s.id + 1), 0);
}

/** A first connection to a server that is not a shard yet: 08006 (or its own SQLSTATE) when it fails. */
async function connectNew(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'pgtide-add-shard' });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return c;
  } catch (err) {
    await c.end().catch(() => {});
    const e = err as Error & { code?: string };
    throw new MoverError('SHARD_UNREACHABLE', `cannot use ${redactUrl(url)} as a shard: ${e.message}`, {
      sqlstate: typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : '08006', cause: err,
    });
  }
}
