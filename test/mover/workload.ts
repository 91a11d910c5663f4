// Test workload for the mover: writers straight to the shards (as proxies would), a ledger of acknowledged writes, invariant checks.
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Catalog } from '../../config/catalog.js';
import { hashKey } from '../../config/hash.js';
import { RoutingIndex } from '../../config/routing.js';
import { HASH_END } from '../../config/types.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

export const FENCE = 'PT001';

export const DDL = `
  CREATE TABLE accounts (id int8 PRIMARY KEY, balance int8 NOT NULL, note text);
  CREATE TABLE items (account_id int8 NOT NULL, seq int NOT NULL, qty int NOT NULL, PRIMARY KEY (account_id, seq));`;

/** The routing as the writers see it: refreshed on a fence error and every 50 ms. */
export class RoutingView {
  index!: RoutingIndex;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly catalog: Catalog) {}
  async refresh(): Promise<void> {
    this.index = new RoutingIndex(await this.catalog.loadRoutingTable());
  }
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), 50);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
  owner(key: number): number {
    return this.index.shardForKey(this.index.tableInfo('accounts')!, key);
  }
}

/** What every acknowledged write says the data must be. */
export class Ledger {
  readonly accounts = new Map<number, number>();
  readonly items = new Map<number, Map<number, number>>();
  rows(): { accounts: string[]; items: string[] } {
    const a = [...this.accounts].map(([k, b]) => `${k}:${b}`).sort();
    const i: string[] = [];
    for (const [k, m] of this.items) for (const [s, q] of m) i.push(`${k}:${s}:${q}`);
    return { accounts: a, items: i.sort() };
  }

  /** Follow one acknowledged writeKey(…) with the same arguments. */
  acknowledge(k: number, exists: boolean, roll: number, seq: number): void {
    if (!exists) {
      this.accounts.set(k, 0);
      this.items.set(k, new Map([[1, 1]]));
    } else if (roll < 10) {
      this.accounts.delete(k);
      this.items.delete(k);
    } else {
      this.accounts.set(k, this.accounts.get(k)! + 1);
      if (roll < 55) {
        const m = this.items.get(k)!;
        m.set(seq, (m.get(seq) ?? 0) + 1);
      }
    }
  }
}

/**
 * One writer transaction on key k: create it (with one item) when it does not exist, else delete
 * it (roll < 10), or add 1 to its balance and, for roll < 55, to item `seq`. The caller rolls back
 * on error and calls Ledger.acknowledge once COMMIT succeeded.
 */
export async function writeKey(c: pg.ClientBase, k: number, exists: boolean, roll: number, seq: number, note: string): Promise<void> {
  await c.query('BEGIN');
  if (!exists) {
    await c.query('INSERT INTO accounts (id, balance, note) VALUES ($1, 0, $2)', [k, note]);
    await c.query('INSERT INTO items (account_id, seq, qty) VALUES ($1, 1, 1)', [k]);
  } else if (roll < 10) {
    await c.query('DELETE FROM items WHERE account_id = $1', [k]);
    await c.query('DELETE FROM accounts WHERE id = $1', [k]);
  } else if (roll < 55) {
    await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [k]);
    await c.query('INSERT INTO items (account_id, seq, qty) VALUES ($1, $2, 1) ON CONFLICT (account_id, seq) DO UPDATE SET qty = items.qty + 1', [k, seq]);
  } else {
    await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [k]);
  }
  await c.query('COMMIT');
}

/** Rows loaded before the job (keys the writers never touch), straight onto their owners. */
export async function preload(shards: pg.Client[], view: RoutingView, ledger: Ledger, from: number, count: number): Promise<void> {
  const byShard = new Map<number, number[]>();
  for (let k = from; k < from + count; k++) {
    const s = view.owner(k);
    if (!byShard.has(s)) byShard.set(s, []);
    byShard.get(s)!.push(k);
    ledger.accounts.set(k, k % 97);
    ledger.items.set(k, new Map([[1, k % 7], [2, 3]]));
  }
  for (const [s, keys] of byShard) {
    await shards[s]!.query(`INSERT INTO accounts SELECT k, k % 97, repeat('x', 40) FROM unnest($1::int8[]) k`, [keys]);
    await shards[s]!.query('INSERT INTO items SELECT k, s, CASE WHEN s = 1 THEN k % 7 ELSE 3 END FROM unnest($1::int8[]) k, generate_series(1, 2) s', [keys]);
  }
}

export interface WriterStats {
  ops: number;
  fenced: number;
  errors: string[];
}

/**
 * `writers` loops, each owning the keys k ≡ w (mod writers) in [1, keys], so the ledger is exact:
 * inserts (account + item in one transaction), increments, multi-statement increments, deletes.
 * A fence error rolls back, refreshes the routing and retries on the new owner.
 */
export function startWriters(urls: string[], view: RoutingView, ledger: Ledger, opts: { writers: number; keys: number }): { stop(): Promise<WriterStats> } {
  let running = true;
  const stats: WriterStats = { ops: 0, fenced: 0, errors: [] };
  const loops = Array.from({ length: opts.writers }, async (_, w) => {
    const conns = await Promise.all(urls.map(async (u) => {
      const c = new pg.Client({ connectionString: u });
      c.on('error', () => {});
      await c.connect();
      return c;
    }));
    let seed = w * 7919 + 1;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    try {
      while (running) {
        const k = 1 + w + opts.writers * rnd(Math.floor(opts.keys / opts.writers));
        const roll = rnd(100);
        const exists = ledger.accounts.has(k);
        const seq = 1 + rnd(3);
        for (let attempt = 0; ; attempt++) {
          const c = conns[view.owner(k)]!;
          try {
            await writeKey(c, k, exists, roll, seq, `w${w}`);
            break;
          } catch (err) {
            await c.query('ROLLBACK').catch(() => {});
            if ((err as { code?: string }).code === FENCE && attempt < 2000) {
              stats.fenced++;
              await new Promise((r) => setTimeout(r, 5));
              await view.refresh().catch(() => {});
              continue;
            }
            throw err;
          }
        }
        stats.ops++;
        // Acknowledged: the ledger follows.
        ledger.acknowledge(k, exists, roll, seq);
        if (stats.ops % 4 === 0) await new Promise((r) => setTimeout(r, 1));
      }
    } catch (err) {
      stats.errors.push((err as Error).message);
    } finally {
      await Promise.allSettled(conns.map((c) => c.end()));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

function inRangeSql(col: string, lo: bigint, hi: bigint): string {
  const h = `hashint8extended(${col}, 0)`;
  return `${h} >= '${lo}'::int8${hi < HASH_END ? ` AND ${h} < '${hi}'::int8` : ''}`;
}

export async function rangeCount(c: pg.Client, table: string, col: string, lo: bigint, hi: bigint): Promise<number> {
  const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${inRangeSql(col, lo, hi)}`);
  return Number(rows[0]!.n);
}

/**
 * Every key exactly once, on the shard that owns it; nothing on a shard that does not own it; whole
 * tables equal the ledger (counts and an md5 over the sorted rows).
 */
export async function checkInvariants(shards: pg.Client[], catalog: Catalog, ledger: Ledger): Promise<void> {
  const index = new RoutingIndex(await catalog.loadRoutingTable());
  const info = index.tableInfo('accounts')!;
  const accounts: string[] = [];
  const items: string[] = [];
  const seen = new Map<number, number>();
  for (const [i, c] of shards.entries()) {
    const a = await c.query<{ id: string; balance: string }>('SELECT id, balance FROM accounts');
    for (const r of a.rows) {
      const k = Number(r.id);
      assert.equal(index.shardForKey(info, k), i, `account ${k} found on shard ${i}, which does not own it`);
      assert.equal(seen.has(k), false, `account ${k} exists twice`);
      seen.set(k, i);
      accounts.push(`${k}:${r.balance}`);
    }
    const it = await c.query<{ account_id: string; seq: number; qty: number }>('SELECT account_id, seq, qty FROM items');
    for (const r of it.rows) {
      assert.equal(index.shardForKey(info, Number(r.account_id)), i, `item of ${r.account_id} found on shard ${i}, which does not own it`);
      items.push(`${r.account_id}:${r.seq}:${r.qty}`);
    }
  }
  const want = ledger.rows();
  accounts.sort();
  items.sort();
  assert.equal(accounts.length, want.accounts.length, 'account count equals the ledger');
  assert.equal(items.length, want.items.length, 'item count equals the ledger');
  const diff = accounts.filter((x, i) => x !== want.accounts[i]).slice(0, 5);
  assert.deepEqual(diff, [], 'accounts equal the ledger');
  assert.deepEqual(items, want.items, 'items equal the ledger');
  // And the server's own checksum of each table, summed over shards, matches the ledger's.
  let sum = 0n;
  for (const c of shards) {
    const { rows } = await c.query<{ s: string | null }>('SELECT sum(balance)::text AS s FROM accounts');
    sum += BigInt(rows[0]!.s ?? '0');
  }
  assert.equal(sum, [...ledger.accounts.values()].reduce((a, b) => a + BigInt(b), 0n), 'sum of balances equals the ledger');
}

export { hashKey };

/**
 * The mover tests' cluster: 2 shards holding `accounts` (4 partitions) and its colocated `items`,
 * and a routing view. The tests drive their own Mover (own settings, own kill points), so the
 * proxy leader's job loop stays out.
 */
export async function startMoverTestBed(): Promise<{ cluster: TestCluster; shards: pg.Client[]; view: RoutingView }> {
  const cluster = await startTestCluster({ shards: 2 });
  cluster.proxy.mover.runPending = async () => [];
  const shards = [await cluster.shard(0), await cluster.shard(1)];
  for (const s of shards) await s.query(DDL);
  const catalog = cluster.proxy.catalog;
  await catalog.shardTable('accounts', 'id', 'int8', { partitions: 4 });
  await catalog.shardTable('items', 'account_id', 'int8', { colocateWith: 'accounts' });
  cluster.proxy.server.installRouting(await catalog.loadRoutingTable());
  const view = new RoutingView(catalog);
  await view.start();
  return { cluster, shards, view };
}
