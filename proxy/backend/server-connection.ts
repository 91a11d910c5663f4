// One authenticated connection from the proxy to a Postgres server: TCP connect, startup, login (trust, cleartext, md5, SCRAM), then hand-over of the socket.
import net from 'node:net';
import { md5Response } from '../auth/md5.js';
import { SCRAM_SHA_256, ScramClientSession } from '../auth/scram.js';
import {
  BackendCode,
  BackendScanner,
  authenticationData,
  authenticationType,
  parseBackendKeyData,
  parseErrorFields,
  parseParameterStatus,
  parseSASLMechanisms,
} from '../protocol/backend-scanner.js';
import { ProtocolError } from '../protocol/errors.js';
import { TERMINATE, buildCancelRequest, buildPasswordMessage, buildSASLInitialResponse, buildSASLResponse, buildStartup } from '../protocol/frontend-writer.js';
import { ServerConnectionError, ServerError } from './errors.js';

export interface ServerConnectOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** extra startup GUCs, e.g. application_name */
  params?: Record<string, string>;
  /** whole login, TCP connect included (default 10 s) */
  connectTimeoutMs?: number;
}

export type ServerAuthMethod = 'trust' | 'password' | 'md5' | 'scram-sha-256';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const CANCEL_TIMEOUT_MS = 5_000;

let nextId = 1;

export class ServerConnection {
  /** process-unique, for SHOW SERVERS */
  readonly id = nextId++;
  /** the error the socket raised while nobody else listened for 'error' yet (see handOver) */
  lastError: Error | null = null;

  private constructor(
    /** after connect() resolves the caller owns its events: attach 'data' (the socket resumes then) and 'error' */
    readonly socket: net.Socket,
    /** bytes the server sent after the first ReadyForQuery, to be processed before the socket's next data */
    readonly leftover: Buffer | null,
    readonly pid: number,
    readonly secret: Buffer,
    readonly serverParams: Map<string, string>,
    readonly authMethod: ServerAuthMethod,
    readonly host: string,
    readonly port: number,
  ) {}

  /**
   * Resolves at the first ReadyForQuery. A server ErrorResponse during login rejects with a
   * ServerError carrying the server's SQLSTATE; network failures and the timeout with 08006.
   */
  static connect(opts: ServerConnectOptions): Promise<ServerConnection> {
    return new Promise<ServerConnection>((resolve, reject) => {
      const where = `${opts.host}:${opts.port}`;
      const socket = net.connect({ host: opts.host, port: opts.port });
      socket.setNoDelay(true);
      const scanner = new BackendScanner();
      const serverParams = new Map<string, string>();
      let pid = 0;
      let secret = Buffer.alloc(0);
      let method: ServerAuthMethod = 'trust';
      let scram: ScramClientSession | null = null;
      let settled = false;

      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        cleanup();
        socket.destroy();
        reject(err);
      };
      const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const timer = setTimeout(() => {
        fail(new ServerConnectionError('SERVER_CONNECT_TIMEOUT', `login to server ${where} timed out after ${timeoutMs} ms`));
      }, timeoutMs);

      const onConnect = (): void => {
        socket.write(buildStartup({ ...opts.params, user: opts.user, database: opts.database }));
      };
      const onError = (err: Error): void => {
        fail(new ServerConnectionError('SERVER_CONNECT_FAILED', `could not connect to server ${where}: ${err.message}`, { cause: err }));
      };
      const onClose = (): void => {
        fail(new ServerConnectionError('SERVER_CLOSED', `server ${where} closed the connection during login`));
      };

      /** One login message; returns true at ReadyForQuery. */
      const handle = (buf: Buffer, code: number, start: number, end: number): boolean => {
        switch (code) {
          case BackendCode.Authentication: {
            const type = authenticationType(buf, start, end);
            switch (type) {
              case 0: // AuthenticationOk
                return false;
              case 3: // cleartext
                method = 'password';
                socket.write(buildPasswordMessage(opts.password));
                return false;
              case 5: {
                method = 'md5';
                const salt = authenticationData(buf, start, end);
                if (salt.length !== 4) throw new ProtocolError('invalid AuthenticationMD5Password message from server');
                socket.write(buildPasswordMessage(md5Response(opts.password, opts.user, salt)));
                return false;
              }
              case 10: {
                const mechanisms = parseSASLMechanisms(buf, start, end);
                if (!mechanisms.includes(SCRAM_SHA_256)) {
                  throw new ServerConnectionError('SERVER_AUTH_UNSUPPORTED', `server ${where} offers SASL mechanisms ${mechanisms.join(', ')}, none supported`);
                }
                method = 'scram-sha-256';
                scram = new ScramClientSession(opts.password);
                socket.write(buildSASLInitialResponse(SCRAM_SHA_256, scram.clientFirst()));
                return false;
              }
              case 11:
                if (scram === null) throw new ProtocolError('SASLContinue from server without a SASL exchange');
                socket.write(buildSASLResponse(scram.clientFinal(authenticationData(buf, start, end))));
                return false;
              case 12:
                if (scram === null) throw new ProtocolError('SASLFinal from server without a SASL exchange');
                scram.verifyServerFinal(authenticationData(buf, start, end));
                return false;
              default:
                throw new ServerConnectionError('SERVER_AUTH_UNSUPPORTED', `server ${where} asks for authentication type ${type}, which pgtide does not support`);
            }
          }
          case BackendCode.ParameterStatus: {
            const p = parseParameterStatus(buf, start, end);
            serverParams.set(p.name, p.value);
            return false;
          }
          case BackendCode.BackendKeyData: {
            const k = parseBackendKeyData(buf, start, end);
            pid = k.pid;
            // a copy: a subarray would pin the whole chunk for the connection's life
            secret = Buffer.from(k.secret);
            return false;
          }
          case BackendCode.ErrorResponse:
            throw new ServerError(parseErrorFields(buf, start, end));
          case BackendCode.NoticeResponse:
          case BackendCode.NegotiateProtocolVersion:
            return false;
          case BackendCode.ReadyForQuery:
            return true;
          default:
            throw new ProtocolError(`unexpected message '${String.fromCharCode(code)}' from server ${where} during login`);
        }
      };

      const onData = (chunk: Buffer): void => {
        try {
          scanner.push(chunk);
          for (let m = scanner.next(); m !== undefined; m = scanner.next()) {
            if (!handle(scanner.buffer, m.code, m.start, m.end)) continue;
            settled = true;
            cleanup();
            const conn = new ServerConnection(socket, scanner.takeRemaining(), pid, secret, serverParams, method, opts.host, opts.port);
            handOver(conn);
            resolve(conn);
            return;
          }
        } catch (err) {
          fail(err as Error);
        }
      };

      socket.on('connect', onConnect);
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
    });
  }

  /** Sends CancelRequest for this connection's current query on a fresh connection. */
  cancel(): Promise<void> {
    return sendCancel(this.host, this.port, this.pid, this.secret);
  }

  /** Polite close: Terminate, then FIN. */
  close(): void {
    if (!this.socket.destroyed) this.socket.end(TERMINATE);
  }
}

/**
 * Between resolve() and the caller attaching its listeners, bytes must not be lost and an error
 * must not crash the process (an 'error' event without listener throws). So the socket is paused
 * and resumes when the caller attaches 'data'; our 'error' guard goes away when the caller
 * attaches its own.
 */
function handOver(conn: ServerConnection): void {
  const socket = conn.socket;
  socket.pause();
  const guard = (err: Error): void => {
    conn.lastError = err;
  };
  socket.on('error', guard);
  let dataSeen = false;
  let errorSeen = false;
  const onNewListener = (event: string | symbol): void => {
    if (event === 'data' && !dataSeen) {
      dataSeen = true;
      // after the listener is actually added (newListener fires before)
      process.nextTick(() => socket.resume());
    } else if (event === 'error' && !errorSeen) {
      errorSeen = true;
      process.nextTick(() => socket.off('error', guard));
    }
    if (dataSeen && errorSeen) socket.off('newListener', onNewListener);
  };
  socket.on('newListener', onNewListener);
}

/** Opens a fresh connection, sends CancelRequest, and resolves when the server has closed it. */
export function sendCancel(host: string, port: number, pid: number, secret: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    let settled = false;
    const done = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => done(new ServerConnectionError('SERVER_CONNECT_TIMEOUT', `cancel request to ${host}:${port} timed out`)), CANCEL_TIMEOUT_MS);
    socket.on('connect', () => socket.end(buildCancelRequest(pid, secret)));
    socket.on('error', (err) => done(new ServerConnectionError('SERVER_CONNECT_FAILED', `could not send cancel request to ${host}:${port}: ${err.message}`, { cause: err })));
    socket.on('close', () => done(null));
    // the server answers nothing; reading keeps the socket flowing until its FIN arrives
    socket.resume();
  });
}
