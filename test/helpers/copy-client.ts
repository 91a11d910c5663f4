// Test helper: a raw wire-protocol client (logged in like any driver) that runs COPY both ways in chosen chunks.
import { ServerConnection } from '../../proxy/backend/server-connection.js';
import { BackendCode, BackendScanner, commandCompleteTag, parseErrorFields } from '../../proxy/protocol/backend-scanner.js';
import { buildCopyData, buildCopyFail, buildQuery, COPY_DONE } from '../../proxy/protocol/frontend-writer.js';
import { APP_DB, APP_PASSWORD, APP_USER } from './cluster.js';

export interface CopyResult {
  tag: string | null;
  error: Record<string, string> | null;
  /** COPY TO: the CopyData bodies, concatenated. */
  data: Buffer;
  /** Each CopyData body of a COPY TO. */
  messages: number;
  /** The server entered copy-in mode (sent CopyInResponse). */
  copyIn: boolean;
  status: string;
}

export class CopyClient {
  private readonly scanner = new BackendScanner();
  private waiter: (() => void) | null = null;
  private closed = false;

  private constructor(readonly conn: ServerConnection) {
    conn.socket.on('data', (chunk: Buffer) => {
      this.scanner.push(chunk);
      this.waiter?.();
    });
    conn.socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    conn.socket.on('error', () => {});
    if (conn.leftover) this.scanner.push(conn.leftover);
  }

  static async connect(port: number): Promise<CopyClient> {
    return new CopyClient(await ServerConnection.connect({ host: '127.0.0.1', port, user: APP_USER, password: APP_PASSWORD, database: APP_DB }));
  }

  /** Connect to any server by postgres:// URL (a shard directly, for comparisons). */
  static async connectUrl(url: string): Promise<CopyClient> {
    const u = new URL(url);
    return new CopyClient(await ServerConnection.connect({
      host: u.hostname, port: Number(u.port || 5432), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: decodeURIComponent(u.pathname.slice(1)),
    }));
  }

  close(): void {
    this.conn.socket.destroy();
  }

  /** Next message from the server (copied out of the scanner's buffer). */
  private async next(): Promise<{ code: number; body: Buffer; raw: Buffer }> {
    for (;;) {
      const m = this.scanner.next();
      if (m) {
        const raw = Buffer.from(this.scanner.buffer.subarray(m.start, m.end));
        return { code: m.code, body: raw.subarray(5), raw };
      }
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
  }

  /**
   * Run `sql` (a COPY … FROM STDIN) and send `chunks` as CopyData messages, one each, then
   * CopyDone (or CopyFail with `fail`). Waits for drain between writes, like a real client.
   */
  async copyIn(sql: string, chunks: Iterable<Buffer> | AsyncIterable<Buffer>, opts: { fail?: string } = {}): Promise<CopyResult> {
    const res: CopyResult = { tag: null, error: null, data: Buffer.alloc(0), messages: 0, copyIn: false, status: '' };
    this.conn.socket.write(buildQuery(sql));
    for (;;) {
      const m = await this.next();
      if (m.code === BackendCode.CopyInResponse) {
        res.copyIn = true;
        break;
      }
      if (m.code === BackendCode.ErrorResponse) res.error ??= parseErrorFields(m.raw, 0, m.raw.length);
      if (m.code === BackendCode.ReadyForQuery) {
        res.status = String.fromCharCode(m.body[0]!);
        return res;
      }
    }
    const sock = this.conn.socket;
    for await (const c of chunks) {
      if (!sock.write(buildCopyData(c))) await new Promise((r) => sock.once('drain', r));
    }
    sock.write(opts.fail !== undefined ? buildCopyFail(opts.fail) : COPY_DONE);
    return this.finish(res);
  }

  /** Run a COPY … TO STDOUT (or any query) and collect everything through ReadyForQuery. */
  async query(sql: string): Promise<CopyResult> {
    this.conn.socket.write(buildQuery(sql));
    return this.finish({ tag: null, error: null, data: Buffer.alloc(0), messages: 0, copyIn: false, status: '' });
  }

  private async finish(res: CopyResult): Promise<CopyResult> {
    const data: Buffer[] = [];
    for (;;) {
      const m = await this.next();
      switch (m.code) {
        case BackendCode.CopyData:
          data.push(m.body);
          res.messages++;
          break;
        case BackendCode.CommandComplete:
          res.tag = commandCompleteTag(m.raw, 0, m.raw.length);
          break;
        case BackendCode.ErrorResponse:
          res.error ??= parseErrorFields(m.raw, 0, m.raw.length);
          break;
        case BackendCode.ReadyForQuery:
          res.status = String.fromCharCode(m.body[0]!);
          res.data = Buffer.concat(data);
          return res;
        default:
          break;
      }
    }
  }
}

/** Cut `data` into pieces of `size` bytes (the last may be shorter). */
export function chunksOf(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}
