// Public API of the statement router: shapes, plans, and resolving plans to shards.
export { Router } from './router.js';
export { lex, findValuesRows, type LexResult } from './lexer.js';
export { resolveShards, resolveRowShards, keyedPartition, firstKeyText, parseArrayText, RouteError, type BoundParams } from './resolve.js';
export type { Analysis, AnalyzeResult, KeyRef, SchemaView, SessionOp, StatementPlan, TransactionOp } from './types.js';
