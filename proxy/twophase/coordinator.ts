// Two-phase commit coordination: durable commit decisions in the catalog, and recovery of in-doubt transactions.
//
// Protocol (presumed abort): every shard of the transaction runs PREPARE TRANSACTION
// '<base>_<shard>'; only when all succeeded is a decision row written to the catalog (the commit
// point); then COMMIT PREPARED runs on each shard and the row is deleted. A crash before the row
// exists leaves prepared transactions without a decision: recovery rolls them back. A crash after
// it leaves them with one: recovery commits them. So the data is all-or-nothing either way.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { RoutingTable } from '../../config/types.js';

export const GID_PREFIX = 'pgtide_';

type QueryShard = (shardId: number, sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

export interface InDoubt {
  shardId: number;
  gid: string;
  base: string;
  preparedAt: Date;
  decided: boolean;
}

export class TwoPhaseCoordinator {
  private counter = 0;

  constructor(private readonly catalog: pg.Pool, private readonly proxyId: () => number, private readonly log: Logger) {}

  /** A new transaction id base, unique across proxies and restarts. */
  newBase(): string {
    return `${GID_PREFIX}${this.proxyId()}_${Date.now().toString(36)}_${(this.counter++).toString(36)}`;
  }

  static gid(base: string, shardId: number): string {
    return `${base}_${shardId}`;
  }

  /** The commit point: after this returns, the transaction commits on every shard, even after a crash. */
  async decideCommit(base: string, shards: number[]): Promise<void> {
    await this.catalog.query('INSERT INTO pgtide.twophase_decisions (gid, proxy_id, shards) VALUES ($1, $2, $3)', [base, this.proxyId(), shards]);
  }

  async forget(base: string): Promise<void> {
    await this.catalog.query('DELETE FROM pgtide.twophase_decisions WHERE gid = $1', [base]).catch((err: Error) => {
      this.log.warn({ err: err.message, gid: base }, 'could not forget a two-phase decision; recovery will clean it up');
    });
  }

  /** Prepared transactions of pgtide on every shard, with whether a commit decision exists. */
  async inDoubt(routing: RoutingTable, query: QueryShard): Promise<InDoubt[]> {
    const { rows } = await this.catalog.query<{ gid: string }>('SELECT gid FROM pgtide.twophase_decisions');
    const decided = new Set(rows.map((r) => r.gid));
    const out: InDoubt[] = [];
    for (const shard of routing.shards.filter((s) => s.state !== 'removed')) {
      let prepared: Record<string, unknown>[];
      try {
        prepared = await query(shard.id, "SELECT gid, prepared FROM pg_prepared_xacts WHERE gid LIKE 'pgtide\\_%' AND database = current_database()");
      } catch {
        continue; // a shard that is down is recovered on a later pass
      }
      for (const p of prepared) {
        const gid = String(p.gid);
        const base = gid.slice(0, gid.lastIndexOf('_'));
        out.push({ shardId: shard.id, gid, base, preparedAt: p.prepared as Date, decided: decided.has(base) });
      }
    }
    return out;
  }

  /**
   * Finish every in-doubt transaction: commit those with a decision, roll back those without one
   * once they are older than `graceMs` (a live proxy may be between PREPARE and its decision).
   */
  async recover(routing: RoutingTable, query: QueryShard, graceMs = 30_000): Promise<{ committed: number; rolledBack: number }> {
    let committed = 0;
    let rolledBack = 0;
    const now = Date.now();
    // A transaction whose proxy is no longer alive will never get its decision: no grace needed.
    const { rows: alive } = await this.catalog.query<{ id: number }>("SELECT id FROM pgtide.proxies WHERE state = 'alive'");
    const aliveIds = new Set(alive.map((r) => r.id));
    for (const t of await this.inDoubt(routing, query)) {
      const owner = Number(/^pgtide_(\d+)_/.exec(t.gid)?.[1]);
      try {
        if (t.decided) {
          await query(t.shardId, `COMMIT PREPARED '${t.gid.replace(/'/g, "''")}'`);
          committed++;
        } else if (!aliveIds.has(owner) || now - t.preparedAt.getTime() > graceMs) {
          await query(t.shardId, `ROLLBACK PREPARED '${t.gid.replace(/'/g, "''")}'`);
          rolledBack++;
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message, gid: t.gid, shard: t.shardId }, 'could not resolve a prepared transaction');
      }
    }
    // Decisions whose transactions are all finished can go.
    const remaining = new Set((await this.inDoubt(routing, query)).map((t) => t.base));
    const { rows } = await this.catalog.query<{ gid: string }>('SELECT gid FROM pgtide.twophase_decisions WHERE decided_at < now() - interval \'5 seconds\'');
    for (const r of rows) if (!remaining.has(r.gid)) await this.forget(r.gid);
    if (committed + rolledBack > 0) this.log.info({ committed, rolledBack }, 'resolved in-doubt two-phase transactions');
    return { committed, rolledBack };
  }
}
