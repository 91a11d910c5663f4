// Cutover holds across proxies: every live proxy holds a moving range and acknowledges it through
// the catalog before the mover fences the source.
//
// The proxy that runs the mover (the leader, usually) holds the range in-process and publishes the
// hold: a row in pgtide.holds (job, range, a token naming this attempt, a deadline) and a NOTIFY on
// `pgtide_holds` carrying the same, so other proxies place it without reading the catalog. Each
// other proxy then holds new statements and new transactions on the range (as the leader does,
// proxy/holds.ts + the session's heldBy/inFlightFor, with the hold's source shard as this proxy's
// routing says), waits until no transaction the cutover must wait for is open there (it touched
// the range, or wrote the key space on the source shard before the hold), and acks: a row in pgtide.hold_acks with the token, and a NOTIFY
// on `pgtide_hold_acks`. The mover's waitInFlight step waits for the acks of every live proxy:
//
// * a proxy whose heartbeat is older than the dead bound is declared dead (state 'dead', excluded
//   from acks, as the leader's heartbeat does anyway); a dead proxy that comes back reloads the
//   routing table and the holds before it calls itself alive again;
// * a proxy that heartbeats but does not ack in the cutover's budget (a long transaction on the
//   range, a missed NOTIFY) aborts the attempt: the fence never goes up without its ack, the hold
//   is released everywhere and the job retries later;
// * before an attempt, `settleSuspects` waits (outside the pause budget) while a proxy has missed
//   heartbeats but is not dead yet, so a dying proxy does not burn the job's cutover attempts.
//
// Release: the mover releases in-process and publishes it (row deleted, NOTIFY with the routing
// version it installed); a proxy behind that version installs it first, so its held statements run
// on the new owner. A hold placed for another process's mover ends by itself at its deadline (the
// cutover's budget + install timeout + a margin), so a mover that died holding wedges nothing.
// Missed notifications: every proxy re-reads pgtide.holds on its routing poll (and at start); the
// poll also drops a hold whose mover's proxy is no longer alive (declared dead or stopped).
//
// The hot path pays nothing for this: sessions look at `RangeHolds.active` only.
import type { Logger } from 'pino';
import type { Catalog } from '../../config/catalog.js';
import type { RoutingTable } from '../../config/types.js';
import type { HoldRange, RangeHolds } from '../holds.js';

export const HOLDS_CHANNEL = 'pgtide_holds';
export const HOLD_ACKS_CHANNEL = 'pgtide_hold_acks';

/** What of the proxy process the holds need. */
export interface HoldsHost {
  readonly holds: RangeHolds;
  rangeInFlight(range: HoldRange): boolean;
  waitInFlight(range: HoldRange, timeoutMs: number, stillWanted?: () => boolean): Promise<boolean>;
  routingTable(): RoutingTable;
}

export interface ClusterHoldsOptions {
  catalog: Catalog;
  host: HoldsHost;
  log: Logger;
  /** This proxy's id in pgtide.proxies (0 until registered). */
  proxyId(): number;
  /** Install the catalog's routing version if it is newer than ours (hint: the version wanted). */
  checkVersion(hint?: number): Promise<void>;
  heartbeatMs: number;
  deadAfterMs: number;
}

/** A hold this proxy placed for another process's mover. */
interface RemoteHold {
  range: HoldRange;
  token: number;
  timer: NodeJS.Timeout;
}

/** A proxy that has not acked a hold. */
export interface MissingAck {
  id: number;
  address: string;
  ageMs: number;
}

let tokenSeq = 0;

export class ClusterHolds {
  /** Holds placed here for another process's mover, by job. */
  private readonly remote = new Map<number, RemoteHold>();
  /** Holds this process's mover published, by job: the token of the current attempt. */
  private readonly own = new Map<number, number>();
  /** Wakes a waitAcks loop when an ack notification arrives. */
  private ackWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly opts: ClusterHoldsOptions) {}

  private get log(): Logger {
    return this.opts.log;
  }

  // ---------------------------------------------------------------- every proxy

  /** A notification on HOLDS_CHANNEL or HOLD_ACKS_CHANNEL (the member's listener forwards them). */
  onNotification(channel: string, payload: string | undefined): void {
    if (this.stopped || !payload) return;
    if (channel === HOLD_ACKS_CHANNEL) {
      const waiters = this.ackWaiters;
      this.ackWaiters = [];
      for (const w of waiters) w();
      return;
    }
    if (channel !== HOLDS_CHANNEL) return;
    const f = payload.split(' ');
    try {
      if (f[0] === 'hold' && f.length === 8) {
        const [, job, token, origin, ks, lo, hi, ttl] = f as [string, string, string, string, string, string, string, string];
        if (Number(origin) === this.opts.proxyId()) return; // our own mover holds in-process
        this.placeRemote({ jobId: Number(job), keyspaceId: Number(ks), lo: BigInt(lo), hi: BigInt(hi) }, Number(token), Number(ttl));
      } else if (f[0] === 'release' && f.length === 3) {
        void this.releaseRemote(Number(f[1]), Number(f[2]));
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, payload }, 'bad hold notification');
    }
  }

  /** Hold the range for another process's mover, then ack once no transaction on it is open here. */
  private placeRemote(range: HoldRange, token: number, ttlMs: number): void {
    const prev = this.remote.get(range.jobId);
    if (prev?.token === token) return;
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      if (this.remote.get(range.jobId)?.token !== token) return;
      this.log.warn({ job: range.jobId, ttlMs }, 'cutover hold reached its deadline without a release; releasing it (the mover may have died)');
      this.dropRemote(range.jobId);
    }, Math.max(0, ttlMs));
    timer.unref();
    this.remote.set(range.jobId, { range, token, timer });
    this.opts.host.holds.hold(range, 'remote');
    void this.ackWhenIdle(range, token, ttlMs);
  }

  private async ackWhenIdle(range: HoldRange, token: number, ttlMs: number): Promise<void> {
    const current = () => !this.stopped && this.remote.get(range.jobId)?.token === token;
    try {
      if (this.opts.host.rangeInFlight(range)) {
        if (!(await this.opts.host.waitInFlight(range, ttlMs, current))) return;
      }
      if (!current()) return;
      const me = this.opts.proxyId();
      await this.opts.catalog.pool.query(
        `WITH a AS (INSERT INTO pgtide.hold_acks (job_id, proxy_id, token) VALUES ($1, $2, $3)
                    ON CONFLICT (job_id, proxy_id) DO UPDATE SET token = EXCLUDED.token, acked_at = now() RETURNING 1)
         SELECT pg_notify('${HOLD_ACKS_CHANNEL}', $4) FROM a`,
        [range.jobId, me, token, `${range.jobId} ${token} ${me}`]);
    } catch (err) {
      // No ack: the mover aborts this attempt (never fences without it) and retries later.
      this.log.warn({ err: (err as Error).message, job: range.jobId }, 'could not acknowledge a cutover hold');
    }
  }

  private async releaseRemote(jobId: number, version: number): Promise<void> {
    const r = this.remote.get(jobId);
    if (!r) return;
    // Held statements run by the newest routing version: make sure it is the switched one.
    if (version > this.opts.host.routingTable().version) await this.opts.checkVersion(version).catch(() => {});
    if (this.remote.get(jobId)?.token === r.token) this.dropRemote(jobId);
  }

  private dropRemote(jobId: number): void {
    const r = this.remote.get(jobId);
    if (!r) return;
    clearTimeout(r.timer);
    this.remote.delete(jobId);
    this.opts.host.holds.release(r.range, 'remote');
  }

  /**
   * Re-read pgtide.holds (at start, on the routing poll, after being dead): place the holds we
   * missed, drop the ones that are gone or past their deadline.
   */
  async sync(): Promise<void> {
    if (this.stopped) return;
    const { rows } = await this.opts.catalog.pool.query<{ job_id: number; keyspace_id: number; lo: string; hi: string; token: string; proxy_id: number; left_ms: number; origin_alive: boolean }>(
      `SELECT h.job_id, h.keyspace_id, h.lo::text, h.hi::text, h.token::text, h.proxy_id,
              (extract(epoch FROM h.deadline - now()) * 1000)::float8 AS left_ms,
              EXISTS (SELECT 1 FROM pgtide.proxies p WHERE p.id = h.proxy_id AND p.state = 'alive') AS origin_alive
         FROM pgtide.holds h`);
    const me = this.opts.proxyId();
    const live = new Set<number>();
    for (const r of rows) {
      // The hold of a mover whose proxy is no longer alive is over: nobody will release it.
      if (r.proxy_id === me || r.left_ms <= 0 || !r.origin_alive) continue;
      live.add(r.job_id);
      this.placeRemote({ jobId: r.job_id, keyspaceId: r.keyspace_id, lo: BigInt(r.lo), hi: BigInt(r.hi) }, Number(r.token), r.left_ms);
    }
    for (const jobId of [...this.remote.keys()]) if (!live.has(jobId)) this.dropRemote(jobId);
  }

  // ---------------------------------------------------------------- the mover's side

  /** Publish a hold this process placed in-process (a new attempt: a new token). */
  async publishHold(range: HoldRange, ttlMs: number): Promise<void> {
    // This process runs the job now: a hold it kept for a previous runner of the job is over.
    this.dropRemote(range.jobId);
    const token = Date.now() * 1000 + (tokenSeq++ % 1000);
    this.own.set(range.jobId, token);
    const me = this.opts.proxyId();
    const ttl = Math.max(1, Math.round(ttlMs));
    await this.opts.catalog.pool.query(
      `WITH h AS (INSERT INTO pgtide.holds (job_id, keyspace_id, lo, hi, token, proxy_id, deadline)
                  VALUES ($1, $2, $3::numeric, $4::numeric, $5, $6, now() + make_interval(secs => $7::float8 / 1000))
                  ON CONFLICT (job_id) DO UPDATE SET keyspace_id = EXCLUDED.keyspace_id, lo = EXCLUDED.lo, hi = EXCLUDED.hi,
                    token = EXCLUDED.token, proxy_id = EXCLUDED.proxy_id, deadline = EXCLUDED.deadline
                  RETURNING job_id)
       SELECT pg_notify('${HOLDS_CHANNEL}', $8) FROM h`,
      [range.jobId, range.keyspaceId, range.lo.toString(), range.hi.toString(), token, me, ttl,
        `hold ${range.jobId} ${token} ${me} ${range.keyspaceId} ${range.lo} ${range.hi} ${ttl}`]);
  }

  /** Live proxies (but this one) that have not acked the job's current hold. */
  async missingAcks(jobId: number): Promise<MissingAck[]> {
    const token = this.own.get(jobId);
    if (token === undefined) return [];
    const { rows } = await this.opts.catalog.pool.query<{ id: number; address: string; age_ms: number }>(
      `SELECT p.id, p.address, (extract(epoch FROM now() - p.last_heartbeat) * 1000)::float8 AS age_ms
         FROM pgtide.proxies p
        WHERE p.state = 'alive' AND p.id <> $1
          AND NOT EXISTS (SELECT 1 FROM pgtide.hold_acks a WHERE a.job_id = $2 AND a.proxy_id = p.id AND a.token = $3)`,
      [this.opts.proxyId(), jobId, token]);
    return rows.map((r) => ({ id: r.id, address: r.address, ageMs: r.age_ms }));
  }

  /** Declare dead the proxies among `ids` whose heartbeat is older than the dead bound; returns those. */
  private async declareDead(ids: number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.opts.catalog.pool.query<{ id: number }>(
      `UPDATE pgtide.proxies SET state = 'dead', leader = false
        WHERE id = ANY($1::int[]) AND state = 'alive' AND last_heartbeat < now() - make_interval(secs => $2::float8 / 1000)
        RETURNING id`, [ids, this.opts.deadAfterMs]);
    if (rows.length > 0) this.log.warn({ proxies: rows.map((r) => r.id), deadAfterMs: this.opts.deadAfterMs }, 'proxies missed their heartbeat deadline: declared dead, a cutover goes on without their ack');
    return rows.map((r) => r.id);
  }

  /**
   * Resolves when every live proxy acked the job's current hold; a proxy past the dead bound is
   * declared dead instead. Rejects after timeoutMs naming the proxies that did not ack.
   */
  async waitAcks(jobId: number, timeoutMs: number): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      let missing = await this.missingAcks(jobId);
      const dead = await this.declareDead(missing.filter((m) => m.ageMs > this.opts.deadAfterMs).map((m) => m.id));
      missing = missing.filter((m) => !dead.includes(m.id));
      if (missing.length === 0) return;
      const left = timeoutMs - (Date.now() - t0);
      if (left <= 0) {
        throw new Error(`the hold was not acknowledged within ${Math.round(timeoutMs)} ms by ${missing.map((m) => `proxy ${m.id} (${m.address}, heartbeat ${Math.round(m.ageMs)} ms ago)`).join(', ')}; the source is not fenced without it`);
      }
      // An ack notification, or a short poll (a missed notification, a proxy turning dead).
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.ackWaiters = this.ackWaiters.filter((w) => w !== done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 25));
        this.ackWaiters.push(done);
      });
    }
  }

  /** Release published: held statements everywhere run by `version` (or newer). */
  async publishRelease(jobId: number, version: number): Promise<void> {
    this.own.delete(jobId);
    await this.opts.catalog.pool.query(
      `WITH h AS (DELETE FROM pgtide.holds WHERE job_id = $1), a AS (DELETE FROM pgtide.hold_acks WHERE job_id = $1)
       SELECT pg_notify('${HOLDS_CHANNEL}', $2)`, [jobId, `release ${jobId} ${version}`]);
  }

  /**
   * Before a cutover attempt (outside its pause budget): wait while some live proxy has missed
   * heartbeats without being dead yet, declaring dead those past the bound. Gives up after
   * `maxWaitMs` (the attempt then runs and aborts if that proxy does not ack).
   */
  async settleSuspects(maxWaitMs = this.opts.deadAfterMs + this.opts.heartbeatMs): Promise<void> {
    const suspectMs = 2 * this.opts.heartbeatMs + 500;
    const t0 = Date.now();
    for (;;) {
      const { rows } = await this.opts.catalog.pool.query<{ id: number; age_ms: number }>(
        `SELECT id, (extract(epoch FROM now() - last_heartbeat) * 1000)::float8 AS age_ms
           FROM pgtide.proxies WHERE state = 'alive' AND id <> $1 AND last_heartbeat < now() - make_interval(secs => $2::float8 / 1000)`,
        [this.opts.proxyId(), suspectMs]);
      if (rows.length === 0) return;
      const dead = await this.declareDead(rows.filter((r) => r.age_ms > this.opts.deadAfterMs).map((r) => r.id));
      if (rows.every((r) => dead.includes(r.id))) return;
      if (Date.now() - t0 > maxWaitMs) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Holds placed here for other movers (SHOW / tests). */
  remoteHolds(): HoldRange[] {
    return [...this.remote.values()].map((r) => r.range);
  }

  stop(): void {
    this.stopped = true;
    for (const jobId of [...this.remote.keys()]) this.dropRemote(jobId);
    const waiters = this.ackWaiters;
    this.ackWaiters = [];
    for (const w of waiters) w();
  }
}
