// Route plans: what the router decides about one statement, independent of its literal values.
import type { TableInfo } from '../../config/types.js';

/** Where the router reads table metadata (RoutingIndex satisfies it). Names are canonical. */
export interface SchemaView {
  table(name: string): TableInfo | undefined;
}

/**
 * Where a key value comes from when a cached plan is executed: the lexer's literal list (index
 * `literal`) or the Bind/EXECUTE parameter `$param` (1-based). `array` means the value is an
 * array of keys (`key = ANY($1)`, `key = ANY('{1,2}')`).
 */
export type KeyRef = { literal: number; array?: true } | { param: number; array?: true };

export type TransactionOp =
  | 'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollback-to'
  | 'prepare-transaction' | 'commit-prepared' | 'rollback-prepared' | 'set-transaction'
  /** SET LOCAL / SET CONSTRAINTS: transaction-scoped state every server of the transaction needs. */
  | 'set-local';

export type SessionOp = 'set' | 'reset' | 'discard' | 'listen' | 'unlisten' | 'prepare' | 'execute' | 'deallocate' | 'other';

export type StatementPlan =
  /**
   * Rows pinned by key. Several keys may land on several shards: the executor then merges like a
   * scatter over just those shards. `sameShard`: the keys pin *different* parts of one query
   * (e.g. a subquery on another table by its own key) and are only correct if they all resolve
   * to one shard; resolveShards raises 0A000 otherwise.
   */
  | { kind: 'keyed'; table: string; write: boolean; keys: KeyRef[]; sameShard?: true }
  /**
   * Multi-row INSERT … VALUES: per row its key and the [start, end) char span of "( … )" in the
   * statement text, plus the text before the first row and after the last (ON CONFLICT …,
   * RETURNING …), so the caller can rebuild one INSERT per shard. Spans are of this execution's
   * text (they move with literal lengths), found by the lexer on every call.
   */
  | { kind: 'insert-rows'; table: string; keys: KeyRef[]; rowSpans: [number, number][]; head: [number, number]; tail: [number, number] }
  /**
   * INSERT INTO t (cols) SELECT … whose query reads no sharded table: every shard runs it and keeps
   * the rows whose key (output column `keyPosition`) it owns (see proxy/session/insert-select.ts).
   */
  | { kind: 'insert-select'; table: string; keyPosition: number }
  | { kind: 'scatter-read'; tables: string[] }
  /**
   * `atomic` (DDL only): the statement may run inside a transaction block, so an autocommit one is
   * run in a transaction on every shard and committed only when every shard succeeded.
   */
  | { kind: 'broadcast'; reason: 'ddl' | 'write-without-key' | 'reference-write' | 'utility'; tables: string[]; atomic?: boolean }
  | { kind: 'reference-read'; tables: string[] }
  | { kind: 'unsharded'; tables: string[] }
  /** `name`: the savepoint name for savepoint/release/rollback-to, the setting for set-local. */
  | { kind: 'transaction'; op: TransactionOp; name?: string }
  /** PREPARE carries the plan of the prepared statement (its $n are EXECUTE's arguments). */
  | { kind: 'session'; op: SessionOp; name?: string; plan?: StatementPlan }
  /** DECLARE … CURSOR (with the query's plan), FETCH, MOVE, CLOSE: must follow the DECLARE's shard. */
  | { kind: 'cursor'; op: 'declare' | 'fetch' | 'move' | 'close'; name?: string; plan?: StatementPlan }
  /** COPY t … STDIN/STDOUT; COPY (query) TO STDOUT has table '' and the query's plan. */
  | { kind: 'copy'; table: string; direction: 'from' | 'to'; format: 'text' | 'csv' | 'binary'; options: Record<string, string | boolean>; columns?: string[]; query?: StatementPlan }
  | { kind: 'unsupported'; sqlstate: string; message: string; position?: number };

export interface Analysis {
  plans: StatementPlan[];
  statements: number;
  /** No statement writes (reads, SHOW, SET…): a replica or any shard could serve it. */
  readOnly: boolean;
  /** Served from the plan cache (only the lexer ran). */
  cached: boolean;
}

export interface AnalyzeResult {
  analysis: Analysis;
  /** Literal values of this text in order (what `{ literal: i }` indexes). */
  literals: string[];
  shape: string;
  /** [start, end) char spans of each statement in the text, without the ';'. */
  spans: [number, number][];
}
