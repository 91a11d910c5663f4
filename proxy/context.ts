// What every client session shares inside one proxy process: routing, pools, statements, counters.
import type { Logger } from 'pino';
import type { PoolMode } from '../config/config-file.js';
import type { RoutingIndex } from '../config/routing.js';
import type { RoutingTable } from '../config/types.js';
import type { ShardPool } from './pool/shard-pool.js';
import type { ShardPipeline } from './pool/pipeline.js';
import type { Router } from './router/index.js';
import type { StatementRegistry } from './session/statement-registry.js';
import type { AccessRecorder } from './recorder.js';
import type { TwoPhaseCoordinator } from './twophase/coordinator.js';
import type { ActiveHold, RangeHolds } from './holds.js';
import type { LatencyHistogram } from './http/latency-histogram.js';

/** A session the cancel handler and SHOW CLIENTS can reach. */
export interface SessionHandle {
  readonly pid: number;
  readonly secret: Buffer;
  readonly user: string;
  readonly database: string;
  readonly remote: string;
  readonly connectedAt: number;
  readonly applicationName: string;
  state(): string;
  /** Close the connection with a FATAL 57P01 (shutdown). */
  terminate(): void;
  /** The cutover behind this hold waits for this client's open transaction (see ClientSession.inFlightFor). */
  inFlightFor(hold: ActiveHold): boolean;
  /** Servers linked right now (to forward a cancel to). */
  linkedServers(): { shardId: number; host: string; port: number; pid: number; secret: Buffer }[];
  /** A cancel request for a statement waiting in a pipeline lane: answered here (true), nothing to forward. */
  cancelPipelined(): boolean;
}

export interface ProxyCounters {
  queries: number;
  transactions: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  /** Per shard: statements sent. */
  perShard: Map<number, number>;
  scatter: number;
  broadcast: number;
  /** Statements retried on a new owner after hitting a moved range's fence. */
  fenceRetries: number;
  /** Statements sent on a pipeline lane (a server shared by fast autocommit reads of several clients). */
  pipelined: number;
  /** Statement latency per shard (single-shard statements), for /metrics. */
  latency: LatencyHistogram;
}

export interface ProxyContext {
  readonly poolMode: PoolMode;
  readonly database: string;
  readonly log: Logger;
  /** The routing version this proxy serves right now. */
  routing(): RoutingIndex;
  /** The same version as plain data (for SHOW commands). */
  routingTable(): RoutingTable;
  readonly router: Router;
  pool(shardId: number): ShardPool;
  /** The shard's pipeline lanes for fast autocommit reads (null: pipelining off, or session pooling). */
  pipeline?(shardId: number): ShardPipeline | null;
  pools(): ShardPool[];
  readonly statements: StatementRegistry;
  /** ParameterStatus values sent to clients at login (from the first server login). */
  readonly serverParams: Map<string, string>;
  readonly sessions: Map<number, SessionHandle>;
  readonly counters: ProxyCounters;
  readonly recorder: AccessRecorder;
  /** Whether sessions start with two-phase commit on (config `two_phase_commit`). */
  readonly twoPhaseDefault: boolean;
  /** The coordinator of distributed commits (null until the proxy registered in the catalog). */
  readonly twoPhase: TwoPhaseCoordinator | null;
  /** Ranges whose statements are held during a cutover. */
  readonly holds: RangeHolds;
  /** Re-read the routing table from the catalog now (after a fence said ours is stale). */
  reloadRouting?(): Promise<void>;
}
