// ADD SHARD ['url'], DRAIN SHARD n, REMOVE SHARD n, ALTER SHARD n SET max_bytes = …, VERIFY PARTITION p.
import { redactUrl } from '../../../config/config-file.js';
import { AdminError } from '../admin-session.js';
import type { AdminCommand } from '../result.js';
import { shardOpsOf } from '../shard-ops-api.js';
import { parseSize } from '../size.js';
import { announce } from './announce.js';

const syntaxError = (expected: string) => new AdminError('SYNTAX', `syntax error: expected ${expected}`, { sqlstate: '42601' });

/** The single id argument of `rest` (42601 when missing or followed by more, 22023 when not an id). */
function idArg(rest: string | undefined, what: string, syntax: string): number {
  const words = (rest ?? '').trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length !== 1) throw syntaxError(syntax);
  const n = Number(words[0]);
  if (!/^\d+$/.test(words[0]!) || !Number.isSafeInteger(n)) throw new AdminError('BAD_ARGUMENT', `${what} must be a non-negative integer, got ${words[0]}`, { sqlstate: '22023' });
  return n;
}

export const addShard: AdminCommand = {
  syntax: "ADD SHARD ['postgres://user:password@host:port/database']",
  description: 'register a new shard server (creates pgtide\'s tables there, copies reference tables); without a URL the embedded cluster starts one',
  pattern: /^add\s+shard\b([\s\S]*)$/i,
  async run(ctx, m) {
    const rest = m[1]!.trim();
    let url: string | undefined;
    if (rest !== '') {
      const lit = /^'((?:[^']|'')*)'$/.exec(rest);
      if (!lit) throw syntaxError("ADD SHARD 'postgres://user:password@host:port/database' (the URL as a string literal) or ADD SHARD alone in the embedded cluster");
      url = lit[1]!.replace(/''/g, "'");
    }
    const r = await shardOpsOf(ctx).addShard(url);
    const notices = [...r.notes, `routing version ${r.version}: shard ${r.shardId} is active; it owns no partition yet (MOVE PARTITION p TO SHARD ${r.shardId}, or let the autopilot place some)`];
    notices.push(...(await announce(ctx, r.version)));
    return { columns: ['shard', 'url', 'state'], rows: [[r.shardId, redactUrl(r.url), 'active']], tag: 'ADD SHARD', notices };
  },
};

export const drainShard: AdminCommand = {
  syntax: 'DRAIN SHARD n',
  description: 'move every partition of a shard to the other shards (one job each, balanced) and place nothing new on it',
  pattern: /^drain\s+shard\b([\s\S]*)$/i,
  async run(ctx, m) {
    const id = idArg(m[1], 'shard id', 'DRAIN SHARD n');
    const r = await shardOpsOf(ctx).drainShard(id);
    const notices = [...r.notes];
    if (r.version !== null) {
      notices.push(`routing version ${r.version}: shard ${id} is draining`);
      notices.push(...(await announce(ctx, r.version)));
    }
    notices.push(r.jobs.length > 0
      ? `${r.jobs.length} move job${r.jobs.length === 1 ? '' : 's'} planned; the leader runs them one at a time (SHOW JOBS); REMOVE SHARD ${id} once SHOW SHARDS shows it owns no partition`
      : `no new job was needed; REMOVE SHARD ${id} once SHOW SHARDS shows it owns no partition`);
    return { columns: ['job', 'partition', 'target_shard', 'estimated_bytes'], rows: r.jobs.map((j) => [j.jobId, j.partitionId, j.targetShard, j.bytes]), tag: 'DRAIN SHARD', notices };
  },
};

export const removeShard: AdminCommand = {
  syntax: 'REMOVE SHARD n',
  description: 'forget a shard that owns no partition (after DRAIN SHARD)',
  pattern: /^remove\s+shard\b([\s\S]*)$/i,
  async run(ctx, m) {
    const id = idArg(m[1], 'shard id', 'REMOVE SHARD n');
    const r = await shardOpsOf(ctx).removeShard(id);
    const notices = [...r.notes, `routing version ${r.version}: shard ${id} is removed (its server keeps running; pgtide no longer uses it)`, ...(await announce(ctx, r.version))];
    return { tag: 'REMOVE SHARD', notices };
  },
};

export const alterShard: AdminCommand = {
  syntax: "ALTER SHARD n SET max_bytes = '50 GB' | ALTER SHARD n RESET max_bytes",
  description: 'declare how much a shard may hold: moves that would take its database above it are refused (53100)',
  pattern: /^alter\s+shard\b([\s\S]*)$/i,
  async run(ctx, m) {
    const syntax = "ALTER SHARD n SET max_bytes = '50 GB' or ALTER SHARD n RESET max_bytes";
    const p = /^\s+(\S+)\s+(?:set\s+([a-z_]+)\s*(?:=|\s+to\s+)\s*([\s\S]+?)|reset\s+([a-z_]+))\s*$/i.exec(m[1]!);
    if (!p) throw syntaxError(syntax);
    const id = idArg(p[1], 'shard id', syntax);
    const name = (p[2] ?? p[4])!.toLowerCase();
    if (name !== 'max_bytes') throw new AdminError('UNKNOWN_SETTING', `unrecognized shard setting "${name}"`, { sqlstate: '42704', hint: 'known: max_bytes' });
    const bytes = p[3] !== undefined ? parseSize(p[3]) : null;
    const r = await shardOpsOf(ctx).setMaxBytes(id, bytes);
    const show = (b: number | null) => (b === null ? 'unlimited' : `${b} bytes`);
    return { tag: 'ALTER SHARD', notices: [`shard ${id} max_bytes: ${show(bytes)} (was ${show(r.previous)}); checked against pg_database_size before every move to it`] };
  },
};

export const verifyPartition: AdminCommand = {
  syntax: 'VERIFY PARTITION p',
  description: 'chunked checksums of a partition (source vs target while a job moves it) and stray rows of its range on other shards',
  pattern: /^verify\s+partition\b([\s\S]*)$/i,
  async run(ctx, m) {
    const id = idArg(m[1], 'partition id', 'VERIFY PARTITION p');
    const r = await shardOpsOf(ctx).verifyPartition(id);
    const notices = [...r.notes];
    if (r.strayRows > 0) notices.push(`partition ${id}: ${r.strayRows} stray row${r.strayRows === 1 ? '' : 's'} on shards that do not own it (reported, not deleted)`);
    notices.push(r.ok ? `partition ${id}: verified, no difference and no stray row` : `partition ${id}: NOT clean, see the result column`);
    if (r.jobId !== null) notices.push(`job ${r.jobId} moves this partition: SHOW JOB ${r.jobId}`);
    return { columns: ['table', 'shard', 'role', 'rows', 'checksum', 'result'], rows: r.rows.map((x) => [x.table, x.shard, x.role, x.rows, x.checksum, x.result]), notices };
  },
};

export const SHARD_OPS_COMMANDS: AdminCommand[] = [addShard, drainShard, removeShard, alterShard, verifyPartition];
