// Process-wide registry of prepared statement texts, so servers share one name per (SQL, types).
//
// In transaction pooling a client's named statement must exist on whichever server connection
// runs it. Like PgBouncer ≥1.21 we dedupe by query text + parameter types and prepare it on a
// server under our own name (`pgtide_<id>`) the first time that server needs it.

export interface RegisteredStatement {
  id: number;
  serverName: string;
  sql: string;
  paramTypes: number[];
  /** The Parse message as the server must receive it (under serverName). */
  parseBytes: Buffer;
}

export class StatementRegistry {
  private readonly byKey = new Map<string, RegisteredStatement>();
  private nextId = 1;

  constructor(private readonly buildParse: (name: string, sql: string, types: number[]) => Buffer) {}

  static key(sql: string, paramTypes: readonly number[]): string {
    return paramTypes.length === 0 ? sql : `${paramTypes.join(',')}\u0000${sql}`;
  }

  intern(sql: string, paramTypes: number[]): RegisteredStatement {
    const key = StatementRegistry.key(sql, paramTypes);
    let s = this.byKey.get(key);
    if (!s) {
      const id = this.nextId++;
      const serverName = `pgtide_${id}`;
      s = { id, serverName, sql, paramTypes, parseBytes: this.buildParse(serverName, sql, paramTypes) };
      this.byKey.set(key, s);
    }
    return s;
  }

  get size(): number {
    return this.byKey.size;
  }
}
