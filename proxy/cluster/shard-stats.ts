// The leader's sampling of per-shard server stats and per-partition sizes (the CPU / IO / size signal).
import type { Catalog } from '../../config/catalog.js';
import type { RoutingTable } from '../../config/types.js';

type QueryShard = (shardId: number, sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** Tables above this many estimated rows are sized from a 1 % block sample instead of a full count. */
const EXACT_COUNT_MAX_ROWS = 200_000;

const HASH_FN: Record<string, string> = {
  int2: 'hashint8extended(%s::int8, 0)', int4: 'hashint8extended(%s::int8, 0)', int8: 'hashint8extended(%s::int8, 0)',
  text: 'hashtextextended(%s::text, 0)', varchar: 'hashtextextended(%s::text, 0)', uuid: 'uuid_hash_extended(%s, 0)',
};

function quoteIdent(name: string): string {
  return name.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}

export async function sampleShardStats(catalog: Catalog, routing: RoutingTable, query: QueryShard): Promise<void> {
  const at = new Date().toISOString();
  for (const shard of routing.shards.filter((s) => s.state === 'active' || s.state === 'draining')) {
    let db: Record<string, unknown> | undefined;
    try {
      [db] = await query(shard.id, `SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted,
        pg_database_size(current_database()) AS db_bytes FROM pg_stat_database WHERE datname = current_database()`);
    } catch {
      continue; // a shard that is down has no stats; its pool reports the error
    }
    if (!db) continue;
    await catalog.pool.query(
      `INSERT INTO pgtide.shard_stats (at, shard_id, xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted, db_bytes)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
      [at, shard.id, db.xact_commit, db.xact_rollback, db.blks_read, db.blks_hit, db.tup_returned, db.tup_fetched, db.tup_inserted, db.tup_updated, db.tup_deleted, db.db_bytes]);
    // Per partition of each sharded table on this shard: rows and bytes.
    for (const t of routing.tables.filter((x) => x.kind === 'sharded')) {
      const parts = routing.partitions.filter((p) => p.keyspaceId === t.keyspaceId && p.shardId === shard.id);
      if (parts.length === 0) continue;
      const est = await query(shard.id, 'SELECT greatest(reltuples, 0)::float8 AS n FROM pg_class WHERE oid = to_regclass($1)', [t.name]).catch(() => []);
      if (est.length === 0) continue;
      const sample = Number(est[0]!.n) > EXACT_COUNT_MAX_ROWS;
      const hash = HASH_FN[t.keyType!]!.replace('%s', quoteIdent(t.keyColumn!));
      const bounds = parts.map((p) => p.lo.toString());
      const rows = await query(shard.id,
        `SELECT b.i, count(x.h)::float8 AS n, coalesce(sum(x.sz), 0)::float8 AS bytes
           FROM unnest($1::numeric[], $2::numeric[]) WITH ORDINALITY AS b(lo, hi, i)
           LEFT JOIN (SELECT ${hash} AS h, pg_column_size(t.*) AS sz FROM ${quoteIdent(t.name)} t ${sample ? 'TABLESAMPLE SYSTEM (1)' : ''}) x
             ON x.h >= b.lo AND x.h < b.hi
          GROUP BY b.i ORDER BY b.i`,
        [bounds, parts.map((p) => p.hi.toString())]).catch(() => []);
      const scale = sample ? 100 : 1;
      for (const r of rows) {
        const p = parts[Number(r.i) - 1];
        if (!p) continue;
        await catalog.pool.query('INSERT INTO pgtide.partition_sizes (at, partition_id, table_name, rows, bytes) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
          [at, p.id, t.name, Math.round(Number(r.n) * scale), Math.round(Number(r.bytes) * scale)]);
      }
    }
  }
}
