// Error types of the predictor: a stable code, a SQLSTATE for the admin console, and a default message.

/** Base error of the predictor area; `code` is stable for logs, `sqlstate` is what a client sees. */
export class PredictorError extends Error {
  readonly code: string;
  readonly sqlstate: string;
  constructor(message: string, code = 'PREDICTOR_ERROR', sqlstate = 'XX000') {
    super(message);
    this.name = 'PredictorError';
    this.code = code;
    this.sqlstate = sqlstate;
  }
}

/** Bad admin syntax (SCHEDULE EVENT …): SQLSTATE 42601 syntax_error, like Postgres. */
export class EventSyntaxError extends PredictorError {
  constructor(message: string) {
    super(message, 'EVENT_SYNTAX', '42601');
    this.name = 'EventSyntaxError';
  }
}

/** An input file the CLI cannot read: names the row (1-based, header is row 1) and column. */
export class CsvInputError extends PredictorError {
  readonly row: number;
  readonly column: string;
  constructor(message: string, row: number, column: string) {
    super(message, 'CSV_INPUT', '22P02');
    this.name = 'CsvInputError';
    this.row = row;
    this.column = column;
  }
}

/** Bad command-line usage or option values. */
export class UsageError extends PredictorError {
  constructor(message: string) {
    super(message, 'USAGE', '22023');
    this.name = 'UsageError';
  }
}

/** The event feed could not be fetched or did not hold a list of events. */
export class EventFeedError extends PredictorError {
  constructor(message: string) {
    super(message, 'EVENT_FEED', '58000');
    this.name = 'EventFeedError';
  }
}

/** A saved model value that cannot be loaded (wrong kind, version or shape). */
export class ModelFormatError extends PredictorError {
  constructor(message: string) {
    super(message, 'MODEL_FORMAT', '22P02');
    this.name = 'ModelFormatError';
  }
}
