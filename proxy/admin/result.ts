// The shape of an admin command's answer, and the interface every admin command implements.
import type { AdminContext } from './admin-session.js';

export interface AdminResult {
  /** Column names: the answer is a result set (all columns text). Absent: a command tag only. */
  columns?: string[];
  rows?: (string | number | bigint | boolean | null)[][];
  tag?: string;
  notices?: string[];
}

export interface AdminCommand {
  /** For SHOW HELP. */
  readonly syntax: string;
  readonly description: string;
  /** Matched against the whole command text (case-insensitive patterns, anchored). */
  readonly pattern: RegExp;
  run(ctx: AdminContext, match: RegExpExecArray, text: string): Promise<AdminResult>;
}

export function table(columns: string[], rows: AdminResult['rows']): AdminResult {
  return { columns, rows: rows ?? [] };
}
