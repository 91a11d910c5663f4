// Process-wide registry of prepared statement texts, so servers share one name per (SQL, types).
//
// In transaction pooling a client's named statement must exist on whichever server connection
// runs it. Like PgBouncer ≥1.21 we dedupe by query text + parameter types and prepare it on a
// server under our own name (`pgtide_<id>`) the first time that server needs it.
//
// The registry is only a dedupe index: sessions and servers keep the entries they use. So it is an
// LRU with a bound (an application that builds SQL text with literals would otherwise grow it for
// ever); an evicted text that comes back gets a new id and is prepared again where needed, and
// the old name stays valid wherever it is prepared until that server's own LRU closes it.

export interface RegisteredStatement {
  id: number;
  serverName: string;
  sql: string;
  paramTypes: number[];
  /** The Parse message as the server must receive it (under serverName). */
  parseBytes: Buffer;
}

/** Distinct statement texts remembered by default. */
export const DEFAULT_REGISTRY_SIZE = 10_000;

export class StatementRegistry {
  /** Map keeps insertion order: the first key is the least recently used. */
  private readonly byKey = new Map<string, RegisteredStatement>();
  private nextId = 1;

  constructor(
    private readonly buildParse: (name: string, sql: string, types: number[]) => Buffer,
    private readonly maxSize = DEFAULT_REGISTRY_SIZE,
  ) {}

  static key(sql: string, paramTypes: readonly number[]): string {
    return paramTypes.length === 0 ? sql : `${paramTypes.join(',')}\u0000${sql}`;
  }

  intern(sql: string, paramTypes: number[]): RegisteredStatement {
    const key = StatementRegistry.key(sql, paramTypes);
    let s = this.byKey.get(key);
    if (s) {
      this.byKey.delete(key);
    } else {
      const id = this.nextId++;
      const serverName = `pgtide_${id}`;
      s = { id, serverName, sql, paramTypes, parseBytes: this.buildParse(serverName, sql, paramTypes) };
      if (this.byKey.size >= this.maxSize) this.byKey.delete(this.byKey.keys().next().value!);
    }
    this.byKey.set(key, s);
    return s;
  }

  get size(): number {
    return this.byKey.size;
  }
}
