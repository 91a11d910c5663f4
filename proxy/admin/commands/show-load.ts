// SHOW LOAD [table] [LAST n {seconds|minutes|hours}]: per-partition load summed over proxies.
import { AdminError } from '../admin-session.js';
import { table, type AdminCommand } from '../result.js';
import { identifier } from './identifiers.js';

const UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hour: 3600, hours: 3600 };

export const showLoad: AdminCommand = {
  syntax: 'SHOW LOAD [table] [LAST n seconds|minutes|hours]',
  description: 'per-partition load from the load history, summed over proxies (hottest first)',
  pattern: /^show\s+load(?:\s+(?!last\b)(\S+))?(?:\s+last\s+(\S+)\s+(\S+))?$/i,
  async run({ backend }, m) {
    const tableName = m[1] ? identifier(m[1], 'table name') : null;
    let seconds = 3600;
    if (m[2] !== undefined) {
      const n = Number(m[2]);
      const unit = UNITS[m[3]!.toLowerCase()];
      if (!Number.isFinite(n) || n <= 0 || unit === undefined) {
        throw new AdminError('BAD_INTERVAL', `LAST needs a positive number and a unit (seconds, minutes, hours), got "${m[2]} ${m[3]}"`, { sqlstate: '22007' });
      }
      seconds = n * unit;
    }
    backend.member.assertCatalogReachable();
    const { rows } = await backend.catalog.pool.query(
      `SELECT h.partition_id, h.table_name, p.shard_id, sum(h.reads) AS reads, sum(h.writes) AS writes, sum(h.rows) AS rows,
              sum(h.bytes_in) AS bytes_in, sum(h.bytes_out) AS bytes_out,
              CASE WHEN sum(h.reads + h.writes) > 0 THEN sum(h.latency_us) / sum(h.reads + h.writes) END AS avg_latency_us,
              max(h.max_latency_us) AS max_latency_us, sum(h.errors) AS errors, count(DISTINCT h.proxy_id) AS proxies
         FROM pgtide.load_history h LEFT JOIN pgtide.partitions p ON p.id = h.partition_id
        WHERE h.bucket >= now() - make_interval(secs => $1) AND ($2::text IS NULL OR h.table_name = $2)
        GROUP BY h.partition_id, h.table_name, p.shard_id
        ORDER BY sum(h.reads + h.writes) DESC, h.partition_id`, [seconds, tableName]);
    const round = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100);
    return table(['partition', 'table', 'shard', 'reads', 'writes', 'rows', 'bytes_in', 'bytes_out', 'avg_latency_us', 'max_latency_us', 'errors', 'proxies'],
      rows.map((r) => [r.partition_id, r.table_name, r.shard_id, round(r.reads), round(r.writes), round(r.rows), round(r.bytes_in), round(r.bytes_out), round(r.avg_latency_us), round(r.max_latency_us), round(r.errors), r.proxies]));
  },
};
