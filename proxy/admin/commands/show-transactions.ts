// SHOW TRANSACTIONS: in-doubt two-phase transactions on every shard, with the coordinator's decision.
import { table, type AdminCommand } from '../result.js';

export const showTransactions: AdminCommand = {
  syntax: 'SHOW TRANSACTIONS',
  description: 'prepared (in-doubt) two-phase transactions on every shard and whether a commit was decided',
  pattern: /^show\s+transactions$/i,
  async run({ proxy, backend }) {
    const coordinator = proxy.twoPhase;
    if (!coordinator) return table(['shard', 'gid', 'prepared_at', 'decision'], []);
    const rows = await coordinator.inDoubt(proxy.routingTable(), (id, sql, params) => backend.queryShard(id, sql, params));
    return table(['shard', 'gid', 'prepared_at', 'decision'], rows.map((t) => [t.shardId, t.gid, t.preparedAt.toISOString(), t.decided ? 'commit (recovery will finish it)' : 'none (rolled back if not decided soon)']));
  },
};
