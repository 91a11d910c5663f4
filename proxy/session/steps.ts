// What the proxy expects back from a server for each message it sent: forward, swallow or synthesize.
//
// Every message sent to a server pushes one Step on that server link's queue; the server answers
// in order, so the head step says what to do with each incoming message. Steps that answer a
// client message the proxy did not send (a Parse the server already has, a Close of a shared
// statement) are `Synth`: their bytes are emitted when they reach the head, so the client sees
// replies in exactly the order it sent its messages.

export const enum StepKind {
  /** Simple Query: forward everything through ReadyForQuery. */
  QueryForward,
  /** A Query the proxy injected (held BEGIN, settings sync): swallow through ReadyForQuery. */
  QuerySwallow,
  /** Parse sent for the client: forward ParseComplete / ErrorResponse. */
  ParseForward,
  /** Parse the proxy injected before a Bind/Describe: swallow ParseComplete. */
  ParseSwallow,
  BindForward,
  /** Describe: forward through RowDescription or NoData. */
  DescribeForward,
  /** Execute: forward through CommandComplete, EmptyQueryResponse or PortalSuspended. */
  ExecuteForward,
  CloseForward,
  /** Close of an evicted statement the proxy injected: swallow CloseComplete. */
  CloseSwallow,
  SyncForward,
  SyncSwallow,
  /** Emit `bytes` to the client when this step reaches the head. */
  Synth,
  /** A Query the proxy runs for itself (two-phase commit): swallow everything, report tag and error. */
  Internal,
}

/** Outcome of an Internal step. */
export interface InternalResult {
  tag: string | null;
  error: Record<string, string> | null;
}

export interface Step {
  kind: StepKind;
  bytes?: Buffer;
  /** For Parse steps: the registry id prepared on the server (undone if the Parse fails). */
  statementId?: number;
  /** For ParseForward of a named client statement: forget it if the Parse fails. */
  clientName?: string;
  /** For Internal steps: what came back, and whom to tell at ReadyForQuery. */
  internal?: InternalResult & { done: (r: InternalResult) => void };
}

// Steps without payload are shared constants: queuing them allocates nothing.
export const QUERY_FORWARD: Step = { kind: StepKind.QueryForward };
export const QUERY_SWALLOW: Step = { kind: StepKind.QuerySwallow };
export const BIND_FORWARD: Step = { kind: StepKind.BindForward };
export const DESCRIBE_FORWARD: Step = { kind: StepKind.DescribeForward };
export const EXECUTE_FORWARD: Step = { kind: StepKind.ExecuteForward };
export const CLOSE_FORWARD: Step = { kind: StepKind.CloseForward };
export const CLOSE_SWALLOW: Step = { kind: StepKind.CloseSwallow };
export const SYNC_FORWARD: Step = { kind: StepKind.SyncForward };
export const SYNC_SWALLOW: Step = { kind: StepKind.SyncSwallow };

export function isSwallow(kind: StepKind): boolean {
  return kind === StepKind.QuerySwallow || kind === StepKind.ParseSwallow || kind === StepKind.CloseSwallow || kind === StepKind.SyncSwallow || kind === StepKind.Internal;
}

/** Steps that end at ReadyForQuery (the server's answer to a Query or a Sync). */
export function endsAtReady(kind: StepKind): boolean {
  return kind === StepKind.QueryForward || kind === StepKind.QuerySwallow || kind === StepKind.SyncForward || kind === StepKind.SyncSwallow || kind === StepKind.Internal;
}
