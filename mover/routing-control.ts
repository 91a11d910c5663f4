// RoutingControl: what the mover asks of the proxies during a cutover (hold, wait, install, release), plus two implementations.
import type { RoutingTable } from '../config/types.js';

/** The hash range of one key space whose queries are held during a cutover. */
export interface HeldRange {
  /** Identifies the hold (one per job), so release is idempotent and holds never mix. */
  jobId: number;
  keyspaceId: number;
  /** [lo, hi) of the signed 64-bit hash space; hi may be 2^63. */
  lo: bigint;
  hi: bigint;
  /**
   * How long a proxy may keep this hold without hearing from the mover, ms (set by the cutover:
   * its budget + the install timeout + a margin). A proxy that holds the range for another process's
   * mover drops the hold by itself after this, so a mover that died holding does not wedge the cluster.
   */
  holdMs?: number;
}

/**
 * Implemented by the proxy side and handed to the mover by the composition root. Every method
 * must be idempotent: a resumed job may call `release` for a hold it never placed, and a hold may
 * be placed twice after an aborted attempt.
 *
 * Contract during a cutover, in order:
 * 0. `beforeCutover()` (optional, outside the pause budget): resolves when no proxy is suspect
 *    (missed heartbeats but not yet dead), so a dying proxy does not make attempts abort for want of
 *    its ack; proxies whose heartbeat lapsed past the dead bound are declared dead.
 * 1. `holdRange(r)`: every proxy buffers (does not fail) new statements and new transactions that
 *    would touch the range; statements for other ranges flow on.
 * 2. `waitInFlight(r, timeoutMs)`: resolves when every live proxy acknowledged the hold, i.e. it
 *    holds the range and no transaction that touched the range is still open there; rejects after
 *    timeoutMs (the mover then aborts the cutover: the source is never fenced without every live
 *    proxy's ack; a proxy whose heartbeat is older than the dead bound is declared dead instead).
 * 3. The mover fences the source and commits the new routing version in the catalog.
 * 4. `installVersion(v, timeoutMs)`: resolves when every live proxy routes by version ≥ v (acks),
 *    rejects after timeoutMs (after the point of no return the mover keeps retrying; a proxy that
 *    never acks must stop serving when its lease expires, and its stale writes hit the fence).
 * 5. `release(r)`: held statements run, routed by the newest version the proxy has installed.
 * On abort (before the routing commit) the mover calls `release(r)` without `installVersion`: the
 * held statements run on the source as before.
 */
export interface RoutingControl {
  beforeCutover?(): Promise<void>;
  holdRange(range: HeldRange): Promise<void>;
  waitInFlight(range: HeldRange, timeoutMs: number): Promise<void>;
  installVersion(version: number, timeoutMs: number): Promise<void>;
  release(range: HeldRange): Promise<void>;
}

/** For jobs with no proxy in the loop (tests writing straight to the shards, offline moves). */
export class NoProxyRoutingControl implements RoutingControl {
  async holdRange(): Promise<void> {}
  async waitInFlight(): Promise<void> {}
  async installVersion(): Promise<void> {}
  async release(): Promise<void> {}
}

/**
 * The part of an in-process ProxyServer this control drives. The hold methods are optional: a
 * proxy without them keeps serving during the switch, and its writes to the moved range that reach
 * the source after the fence fail with the fence's SQLSTATE (the proxy reloads and retries).
 */
export interface InProcessProxy {
  installRouting(table: RoutingTable): void;
  routingTable(): RoutingTable;
  holdRange?(range: HeldRange): void;
  waitInFlight?(range: HeldRange, timeoutMs: number): Promise<unknown>;
  releaseRange?(range: HeldRange): void;
}

/** Drives proxies living in this process (tests, the embedded cluster); `load` reads the catalog. */
export class InProcessRoutingControl implements RoutingControl {
  constructor(private readonly proxies: InProcessProxy[], private readonly load: () => Promise<RoutingTable>) {}

  async holdRange(range: HeldRange): Promise<void> {
    for (const p of this.proxies) p.holdRange?.(range);
  }

  async waitInFlight(range: HeldRange, timeoutMs: number): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.waitInFlight?.(range, timeoutMs)));
  }

  async installVersion(version: number): Promise<void> {
    const stale = this.proxies.filter((p) => p.routingTable().version < version);
    if (stale.length === 0) return;
    const table = await this.load();
    if (table.version < version) throw new Error(`catalog is at routing version ${table.version}, expected ≥ ${version}`);
    for (const p of stale) p.installRouting(table);
  }

  async release(range: HeldRange): Promise<void> {
    for (const p of this.proxies) p.releaseRange?.(range);
  }
}
