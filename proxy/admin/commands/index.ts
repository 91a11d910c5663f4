// The admin command table: the first command whose pattern matches runs.
import type { AdminCommand } from '../result.js';
import { explainRoute } from './explain-route.js';
import { referenceTable } from './reference-table.js';
import { reload } from './reload.js';
import { shardTable } from './shard-table.js';
import { showClients } from './show-clients.js';
import { showHelp } from './show-help.js';
import { showPartitions } from './show-partitions.js';
import { showPools } from './show-pools.js';
import { showServers } from './show-servers.js';
import { showShards } from './show-shards.js';
import { showStats } from './show-stats.js';
import { showTables } from './show-tables.js';
import { showVersion } from './show-version.js';
import { showProxies } from './show-proxies.js';
import { showTransactions } from './show-transactions.js';
import { jobControl, movePartition, showJob, showJobs } from './jobs.js';
import { showLoad } from './show-load.js';
import { splitPartition } from './split-partition.js';
import { mergePartitions } from './merge-partitions.js';
import { showForecast } from './show-forecast.js';
import { scheduleEvent } from './schedule-event.js';
import { showEvents } from './show-events.js';
import { setAutopilot } from './set-autopilot.js';
import { showAutopilot } from './show-autopilot.js';
import { showPlan } from './show-plan.js';
import { applyPlan } from './apply-plan.js';
import { runAutopilot } from './run-autopilot.js';
import { restoreTable } from './restore-table.js';
import { showOverrides } from './show-overrides.js';
import { SHARD_OPS_COMMANDS } from './shard-ops.js';

export const COMMANDS: AdminCommand[] = [
  showShards, showTables, showPartitions, showClients, showServers, showPools, showStats, showVersion,
  showProxies, showLoad, showTransactions, movePartition, showJobs, showJob, jobControl, shardTable, referenceTable, splitPartition, mergePartitions, explainRoute, reload,
];
// Forecasts, events, plans and restores (the autopilot).
COMMANDS.push(showForecast, scheduleEvent, showEvents, setAutopilot, showAutopilot, showPlan, applyPlan, runAutopilot, restoreTable, showOverrides);
// Shard-level operations: ADD / DRAIN / REMOVE / ALTER SHARD, VERIFY PARTITION.
COMMANDS.push(...SHARD_OPS_COMMANDS);
COMMANDS.push(showHelp(() => COMMANDS));
