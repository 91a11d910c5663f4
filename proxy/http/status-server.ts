// The HTTP port: /metrics (Prometheus), /healthz (probes), /api/status (JSON) and / (the status page).
import http from 'node:http';
import client from 'prom-client';
import type { Catalog } from '../../config/catalog.js';
import type { ClusterMember } from '../cluster/member.js';
import type { ProxyServer } from '../server.js';
import { renderStatusPage, type StatusData } from './status-page.js';

export interface StatusServerOptions {
  proxy: ProxyServer;
  member: ClusterMember;
  catalog: Catalog;
  /** Extra panels (forecast vs actual) supplied by the composition root. */
  forecast?: () => Promise<StatusData['forecast']>;
}

export class StatusServer {
  private readonly registry = new client.Registry();
  private server: http.Server | null = null;

  constructor(private readonly opts: StatusServerOptions) {
    const { proxy, member } = opts;
    const r = this.registry;
    const gauge = (name: string, help: string, labelNames: string[], collect: (g: client.Gauge) => void) =>
      new client.Gauge({ name, help, labelNames, registers: [r], collect() { collect(this); } });
    gauge('pgtide_queries_total', 'Statements received from clients', [], (g) => g.set(proxy.counters.queries));
    gauge('pgtide_errors_total', 'Errors returned to clients', [], (g) => g.set(proxy.counters.errors));
    gauge('pgtide_transactions_total', 'Explicit transactions begun', [], (g) => g.set(proxy.counters.transactions));
    gauge('pgtide_bytes_in_total', 'Bytes received from clients', [], (g) => g.set(proxy.counters.bytesIn));
    gauge('pgtide_bytes_out_total', 'Bytes sent to clients', [], (g) => g.set(proxy.counters.bytesOut));
    gauge('pgtide_scatter_total', 'Statements fanned out to several shards (reads)', [], (g) => g.set(proxy.counters.scatter));
    gauge('pgtide_broadcast_total', 'Statements fanned out to several shards (writes, DDL)', [], (g) => g.set(proxy.counters.broadcast));
    gauge('pgtide_pipelined_total', 'Fast autocommit reads sent on a server connection shared with other clients', [], (g) => g.set(proxy.counters.pipelined));
    gauge('pgtide_shard_statements_total', 'Statements sent per shard', ['shard'], (g) => {
      for (const [shard, n] of proxy.counters.perShard) g.set({ shard: String(shard) }, n);
    });
    gauge('pgtide_clients', 'Connected application clients', [], (g) => g.set(proxy.sessions.size));
    gauge('pgtide_pool_connections', 'Server connections per shard and state', ['shard', 'state'], (g) => {
      for (const p of proxy.pools()) {
        const s = p.stats();
        g.set({ shard: String(s.shard), state: 'idle' }, s.idle);
        g.set({ shard: String(s.shard), state: 'active' }, s.active);
        g.set({ shard: String(s.shard), state: 'waiting_clients' }, s.waiting);
      }
    });
    gauge('pgtide_routing_version', 'Routing version this proxy serves', [], (g) => g.set(proxy.routing().version));
    gauge('pgtide_leader', '1 when this proxy holds the leader lease', [], (g) => g.set(member.isLeader ? 1 : 0));
    gauge('pgtide_catalog_reachable', '1 when the last heartbeat reached the catalog', [], (g) => g.set(member.state === 'degraded' ? 0 : 1));
    gauge('pgtide_recorder_lag_seconds', 'Seconds since load history was last written to the catalog', [], (g) => g.set(member.lastFlushOk ? (Date.now() - member.lastFlushOk) / 1000 : -1));
    gauge('pgtide_recorded_statements_total', 'Statements counted by the access recorder', [], (g) => g.set(proxy.recorder.recordedQueries));
    client.collectDefaultMetrics({ register: r, prefix: 'pgtide_process_' });
  }

  async listen(host: string, port: number): Promise<number> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`error: ${err.message}\n`);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address();
    return typeof a === 'object' && a ? a.port : port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    switch (url.pathname) {
      case '/metrics': {
        const body = (await this.registry.metrics()) + this.opts.proxy.counters.latency.exposition('pgtide_statement_duration_seconds', 'Single-shard statement latency through the proxy');
        res.writeHead(200, { 'content-type': this.registry.contentType });
        res.end(body);
        return;
      }
      case '/healthz': {
        const degraded = this.opts.member.state === 'degraded';
        res.writeHead(degraded ? 503 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: degraded ? 'degraded' : 'ok', routingVersion: this.opts.proxy.routing().version, leader: this.opts.member.isLeader }));
        return;
      }
      case '/api/status': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(await this.statusData(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
        return;
      }
      case '/': {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(renderStatusPage(await this.statusData()));
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
    }
  }

  private async statusData(): Promise<StatusData> {
    const { proxy, member, catalog } = this.opts;
    const table = proxy.routingTable();
    let load: StatusData['load'] = [];
    let history: StatusData['history'] = [];
    try {
      const r = await catalog.pool.query<{ partition_id: number; ops: number }>(
        `SELECT partition_id, sum(reads + writes)::float8 AS ops FROM pgtide.load_history
          WHERE bucket >= now() - interval '5 minutes' GROUP BY partition_id`);
      load = r.rows.map((x) => ({ partitionId: x.partition_id, ops: x.ops }));
      const h = await catalog.pool.query<{ partition_id: number; bucket: Date; ops: number }>(
        `SELECT partition_id, bucket, sum(reads + writes)::float8 AS ops FROM pgtide.load_history
          WHERE bucket >= now() - interval '30 minutes' GROUP BY partition_id, bucket ORDER BY bucket`);
      history = h.rows.map((x) => ({ partitionId: x.partition_id, t: x.bucket.getTime(), ops: x.ops }));
    } catch {
      // catalog away: the page still shows the routing table this proxy serves
    }
    return {
      generatedAt: Date.now(),
      proxy: { version: table.version, leader: member.isLeader, state: member.state, proxyId: member.proxyId, clients: proxy.sessions.size },
      shards: table.shards.map((s) => ({ id: s.id, state: s.state, pool: proxy.pools().find((p) => p.shardId === s.id)?.stats() ?? null })),
      keyspaces: table.keyspaces.map((k) => ({ id: k.id, name: k.name, tables: table.tables.filter((t) => t.keyspaceId === k.id).map((t) => t.name) })),
      partitions: table.partitions.map((p) => ({ id: p.id, keyspaceId: p.keyspaceId, lo: p.lo.toString(), hi: p.hi.toString(), shardId: p.shardId, state: p.state })),
      load,
      history,
      forecast: this.opts.forecast ? await this.opts.forecast().catch(() => []) : [],
    };
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}
