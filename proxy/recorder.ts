// The access recorder: per partition and table, what queries did in the current interval, plus key samples.
//
// Counting must cost next to nothing on the hot path, so counters live in one Float64Array
// indexed by (partition slot, table slot) and a query adds a handful of numbers to it; nothing
// is allocated per query except when a key sample is kept (a reservoir per table, Algorithm R,
// so samples are proportional to access frequency: hot keys dominate them). At each interval
// the arrays are swapped out and handed to whoever flushes them to the catalog.
import type { RoutingTable } from '../config/types.js';

/** Counter fields per (partition, table) slot. */
export const enum Field {
  Reads,
  Writes,
  Rows,
  BytesIn,
  BytesOut,
  LatencyUs,
  MaxLatencyUs,
  Errors,
}
const FIELDS = 8;

/** Key samples kept per table per interval. */
export const SAMPLES_PER_TABLE = 256;

export interface LoadEntry {
  partitionId: number;
  table: string;
  reads: number;
  writes: number;
  rows: number;
  bytesIn: number;
  bytesOut: number;
  latencyUs: number;
  maxLatencyUs: number;
  errors: number;
}

export interface KeySample {
  table: string;
  partitionId: number;
  /** Signed 64-bit hash as decimal text. */
  hash: string;
  key: string;
  /** How many accesses this sample stands for (accesses seen / samples kept). */
  weight: number;
}

export interface IntervalSnapshot {
  /** Start of the interval (ms since epoch, aligned to the interval). */
  bucket: number;
  intervalMs: number;
  entries: LoadEntry[];
  samples: KeySample[];
}

interface Reservoir {
  seen: number;
  keys: string[];
  hashHi: Int32Array;
  hashLo: Uint32Array;
  partitions: Int32Array;
}

export class AccessRecorder {
  enabled = true;
  private partitionSlots = new Map<number, number>();
  private partitionIds: number[] = [];
  private tableSlots = new Map<string, number>();
  private tableNames: string[] = [];
  /** Per table slot: the partition slots of its key space. */
  private tablePartitions: number[][] = [];
  private counters = new Float64Array(0);
  private reservoirs: Reservoir[] = [];
  private bucket: number;
  /** Totals since start, for SHOW STATS and metrics. */
  recordedQueries = 0;

  constructor(readonly intervalMs = 10_000, private readonly now: () => number = Date.now, private readonly random: () => number = Math.random) {
    this.bucket = this.alignedNow();
  }

  private alignedNow(): number {
    const t = this.now();
    return t - (t % this.intervalMs);
  }

  /** Re-index for a new routing version (the previous interval's counts must be drained first). */
  setRouting(table: RoutingTable): void {
    this.partitionSlots = new Map(table.partitions.map((p, i) => [p.id, i]));
    this.partitionIds = table.partitions.map((p) => p.id);
    const sharded = table.tables.filter((t) => t.kind === 'sharded');
    this.tableSlots = new Map(sharded.map((t, i) => [t.name, i]));
    this.tableNames = sharded.map((t) => t.name);
    this.tablePartitions = sharded.map((t) => table.partitions.flatMap((p, i) => (p.keyspaceId === t.keyspaceId ? [i] : [])));
    this.counters = new Float64Array(this.partitionIds.length * this.tableNames.length * FIELDS);
    this.reservoirs = this.tableNames.map(() => newReservoir());
  }

  /** Slot of (partition, table), or -1 when either is unknown. */
  slot(partitionId: number, table: string): number {
    const p = this.partitionSlots.get(partitionId);
    const t = this.tableSlots.get(table);
    if (p === undefined || t === undefined) return -1;
    return (p * this.tableNames.length + t) * FIELDS;
  }

  /** Count one statement on one partition. */
  record(slot: number, write: boolean, rows: number, bytesIn: number, bytesOut: number, latencyUs: number, error: boolean): void {
    if (!this.enabled || slot < 0) return;
    const c = this.counters;
    c[slot + (write ? Field.Writes : Field.Reads)]! += 1;
    c[slot + Field.Rows]! += rows;
    c[slot + Field.BytesIn]! += bytesIn;
    c[slot + Field.BytesOut]! += bytesOut;
    c[slot + Field.LatencyUs]! += latencyUs;
    if (latencyUs > c[slot + Field.MaxLatencyUs]!) c[slot + Field.MaxLatencyUs] = latencyUs;
    if (error) c[slot + Field.Errors]! += 1;
    this.recordedQueries++;
  }

  /** Count a statement that touched every partition of a table's key space (scatter, broadcast). */
  recordAll(table: string, write: boolean, bytesIn: number, latencyUs: number, error: boolean): void {
    if (!this.enabled) return;
    const t = this.tableSlots.get(table);
    if (t === undefined) return;
    const parts = this.tablePartitions[t]!;
    const n = parts.length;
    for (const p of parts) {
      const slot = (p * this.tableNames.length + t) * FIELDS;
      // Spread evenly: a scatter costs every partition of the key space a share of one statement.
      this.counters[slot + (write ? Field.Writes : Field.Reads)]! += 1 / n;
      this.counters[slot + Field.BytesIn]! += bytesIn / n;
      this.counters[slot + Field.LatencyUs]! += latencyUs / n;
      if (error) this.counters[slot + Field.Errors]! += 1 / n;
    }
    this.recordedQueries++;
  }

  /**
   * Offer a key to the table's reservoir. `key` is called only when the sample is kept, so the
   * key text is decoded (allocated) only for kept samples.
   */
  sample(table: string, partitionId: number, hashHi: number, hashLo: number, key: () => string | null): void {
    if (!this.enabled) return;
    const t = this.tableSlots.get(table);
    if (t === undefined) return;
    const r = this.reservoirs[t]!;
    r.seen++;
    let i: number;
    if (r.keys.length < SAMPLES_PER_TABLE) {
      i = r.keys.length;
    } else {
      i = Math.floor(this.random() * r.seen);
      if (i >= SAMPLES_PER_TABLE) return;
    }
    const text = key();
    if (text === null) return;
    r.keys[i] = text;
    r.hashHi[i] = hashHi;
    r.hashLo[i] = hashLo;
    r.partitions[i] = partitionId;
  }

  /** Swap out the current interval's counts (call on the interval clock and before setRouting). */
  drain(): IntervalSnapshot {
    const counters = this.counters;
    const reservoirs = this.reservoirs;
    const bucket = this.bucket;
    this.counters = new Float64Array(counters.length);
    this.reservoirs = this.tableNames.map(() => newReservoir());
    this.bucket = this.alignedNow();
    const entries: LoadEntry[] = [];
    const nt = this.tableNames.length;
    for (let p = 0; p < this.partitionIds.length; p++) {
      for (let t = 0; t < nt; t++) {
        const s = (p * nt + t) * FIELDS;
        if (counters[s + Field.Reads] === 0 && counters[s + Field.Writes] === 0 && counters[s + Field.Errors] === 0) continue;
        entries.push({
          partitionId: this.partitionIds[p]!, table: this.tableNames[t]!,
          reads: counters[s + Field.Reads]!, writes: counters[s + Field.Writes]!, rows: counters[s + Field.Rows]!,
          bytesIn: counters[s + Field.BytesIn]!, bytesOut: counters[s + Field.BytesOut]!,
          latencyUs: counters[s + Field.LatencyUs]!, maxLatencyUs: counters[s + Field.MaxLatencyUs]!, errors: counters[s + Field.Errors]!,
        });
      }
    }
    const samples: KeySample[] = [];
    reservoirs.forEach((r, t) => {
      const weight = r.keys.length === 0 ? 0 : r.seen / r.keys.length;
      for (let i = 0; i < r.keys.length; i++) {
        const hash = (BigInt(r.hashHi[i]!) << 32n) | BigInt(r.hashLo[i]!);
        samples.push({ table: this.tableNames[t]!, partitionId: r.partitions[i]!, hash: hash.toString(), key: r.keys[i]!, weight });
      }
    });
    return { bucket, intervalMs: this.intervalMs, entries, samples };
  }
}

function newReservoir(): Reservoir {
  return {
    seen: 0,
    keys: [],
    hashHi: new Int32Array(SAMPLES_PER_TABLE),
    hashLo: new Uint32Array(SAMPLES_PER_TABLE),
    partitions: new Int32Array(SAMPLES_PER_TABLE),
  };
}
