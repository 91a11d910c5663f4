// A connection to the admin database `pgtide`: SQL-like commands answered as ordinary result sets.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { PgtideError } from '../../config/errors.js';
import type { Catalog } from '../../config/catalog.js';
import type { RoutingTable } from '../../config/types.js';
import type { ClusterMember } from '../cluster/member.js';
import type { ProxyContext } from '../context.js';
import * as bw from '../protocol/backend-writer.js';
import { toErrorFields } from '../protocol/errors.js';
import { parseQuery } from '../protocol/frontend-messages.js';
import { FrontendCode, type FrontendReader } from '../protocol/frontend-reader.js';
import { COMMANDS } from './commands/index.js';
import type { AdminResult } from './result.js';
import type { AutopilotAdmin } from './autopilot-api.js';
import type { ShardOpsBackend } from './shard-ops-api.js';

/** What admin commands may do beyond this proxy's own state (given by the composition root). */
export interface AdminBackend {
  readonly catalog: Catalog;
  /** Re-read the routing table from the catalog and install it here. */
  reload(): Promise<RoutingTable>;
  /** Run SQL on one shard's application database (admin work: schema checks, row counts). */
  queryShard(shardId: number, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  readonly version: string;
  /** This proxy's cluster membership (acks, leader lease, catalog reachability). */
  readonly member: ClusterMember;
  /** Forecasts, events, plans and restores (absent when the process runs without the autopilot). */
  readonly autopilot?: AutopilotAdmin;
  /** Live redistribution jobs (absent when the mover is not wired in). */
  readonly jobs?: JobsBackend;
  /** ADD / DRAIN / REMOVE / ALTER SHARD and VERIFY PARTITION (absent without the mover). */
  readonly shardOps?: ShardOpsBackend;
}

/** What the admin console asks of the mover; the composition root adapts the mover to it. */
export interface JobsBackend {
  move(partitionId: number, targetShard: number): Promise<{ id: number; state: string }>;
  split(partitionId: number, at: bigint | undefined, moveTo: number | undefined): Promise<{ version: number; left: number; right: number; at: bigint; jobId?: number }>;
  pause(id: number): Promise<{ id: number; state: string }>;
  resume(id: number): Promise<{ id: number; state: string }>;
  cancel(id: number): Promise<{ id: number; state: string }>;
  list(): Promise<{ columns: string[]; rows: (string | number | boolean | null)[][] }>;
  detail(id: number): Promise<{ columns: string[]; rows: (string | number | boolean | null)[][] }>;
}

export interface AdminContext {
  proxy: ProxyContext & { config: { pool: { mode: string } }; startedAt: number };
  backend: AdminBackend;
  log: Logger;
}

export class AdminError extends PgtideError {}

/** One admin client: simple query protocol, one command per statement. */
export class AdminSession {
  private busy = false;
  private closed = false;

  constructor(
    private readonly proxy: AdminContext['proxy'],
    private readonly backend: AdminBackend,
    private readonly socket: Socket,
    private readonly reader: FrontendReader,
    readonly user: string,
    readonly pid: number,
    readonly secret: Buffer,
  ) {
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.fatal(err);
        return;
      }
      this.pump();
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true));
  }

  start(): void {
    this.pump();
  }

  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end(bw.errorResponse({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' }));
  }

  private pump(): void {
    while (!this.busy && !this.closed) {
      let msg;
      try {
        msg = this.reader.next();
      } catch (err) {
        this.fatal(err);
        return;
      }
      if (!msg) return;
      if (msg.code === FrontendCode.Terminate) {
        this.closed = true;
        this.socket.end();
        return;
      }
      if (msg.code === FrontendCode.Sync) {
        this.socket.write(bw.readyForQuery('I'));
        continue;
      }
      if (msg.code !== FrontendCode.Query) {
        // Extended-protocol messages: refuse once per Sync, as a server would after an error.
        this.socket.write(bw.errorResponse({ severity: 'ERROR', code: '0A000', message: 'the admin console speaks the simple query protocol only (psql does)' }));
        this.skipUntilSync();
        continue;
      }
      this.busy = true;
      this.run(parseQuery(msg.bytes)).finally(() => {
        this.busy = false;
        this.pump();
      });
    }
  }

  private skipUntilSync(): void {
    for (;;) {
      const m = this.reader.next();
      if (!m) return;
      if (m.code === FrontendCode.Sync) {
        this.socket.write(bw.readyForQuery('I'));
        return;
      }
    }
  }

  private async run(sql: string): Promise<void> {
    // EXPLAIN ROUTE takes the rest of the text whole (the statement may hold semicolons).
    const statements = /^\s*explain\s+route\s/i.test(sql)
      ? [sql.trim().replace(/;\s*$/, '')]
      : sql.split(';').map((s) => s.trim()).filter((s) => s.length > 0);
    const out: Buffer[] = [];
    if (statements.length === 0) out.push(bw.emptyQueryResponse());
    try {
      for (const text of statements) out.push(...render(await this.execute(text)));
    } catch (err) {
      out.push(bw.errorResponse(toErrorFields(err)));
      if (!(err instanceof PgtideError)) this.proxy.log.error({ err }, 'admin command failed unexpectedly');
    }
    out.push(bw.readyForQuery('I'));
    if (!this.closed) this.socket.write(Buffer.concat(out));
  }

  private async execute(text: string): Promise<AdminResult> {
    // EXPLAIN ROUTE keeps the statement's own text (its semicolons were split above only if the
    // user wrote several commands; one statement's text is passed through whole).
    for (const cmd of COMMANDS) {
      const m = cmd.pattern.exec(text);
      if (m) return cmd.run({ proxy: this.proxy, backend: this.backend, log: this.proxy.log }, m, text);
    }
    const word = text.split(/\s+/)[0]?.toUpperCase() ?? '';
    throw new AdminError('UNKNOWN_ADMIN_COMMAND', `unrecognized admin command: ${text.length > 80 ? `${text.slice(0, 80)}…` : text}`, {
      sqlstate: '42601',
      hint: word === 'SELECT' || word === 'INSERT' ? 'this is the admin database "pgtide"; connect to the application database for SQL' : 'SHOW HELP lists the commands',
    });
  }

  private fatal(err: unknown): void {
    const fields = toErrorFields(err);
    fields.severity = 'FATAL';
    this.closed = true;
    this.socket.end(bw.errorResponse(fields));
  }
}

function render(r: AdminResult): Buffer[] {
  const out: Buffer[] = [];
  for (const notice of r.notices ?? []) out.push(bw.noticeResponse({ severity: 'NOTICE', code: '00000', message: notice }));
  if (r.columns) {
    out.push(bw.rowDescription(r.columns.map((name) => ({ name, typeOid: 25 }))));
    for (const row of r.rows ?? []) out.push(bw.dataRow(row.map((v) => (v === null || v === undefined ? null : String(v)))));
    out.push(bw.commandComplete(r.tag ?? `SHOW ${(r.rows ?? []).length}`));
  } else {
    out.push(bw.commandComplete(r.tag ?? 'OK'));
  }
  return out;
}
