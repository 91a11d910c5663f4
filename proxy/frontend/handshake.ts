// A new client connection until login: SSL/GSS negotiation, cancel requests, startup and authentication.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { PgtideError } from '../../config/errors.js';
import type { UserConfig } from '../../config/config-file.js';
import { isMd5Hash, isScramSecret, makeMd5Salt, makeScramSecret, passwordAuthenticationFailed, SCRAM_SHA_256, ScramServerSession, verifyMd5Response } from '../auth/index.js';
import * as bw from '../protocol/backend-writer.js';
import { toErrorFields } from '../protocol/errors.js';
import { parsePasswordMessage, parseSASLInitialResponse, parseSASLResponse, parseStartupPacket } from '../protocol/frontend-messages.js';
import { FrontendCode, FrontendReader } from '../protocol/frontend-reader.js';

/** PgBouncer's client_login_timeout default. */
const LOGIN_TIMEOUT_MS = 60_000;

export interface LoginResult {
  socket: Socket;
  reader: FrontendReader;
  user: UserConfig;
  database: string;
  params: Record<string, string>;
  pid: number;
  secret: Buffer;
}

export interface HandshakeHost {
  readonly appDatabase: string;
  readonly authMethod: 'scram-sha-256' | 'md5';
  readonly tlsContext: tls.SecureContext | null;
  user(name: string): UserConfig | undefined;
  /** SCRAM secret of a user (derived once from a plaintext password). */
  scramSecret(user: UserConfig): string | null;
  /** ParameterStatus values to report at login. */
  loginParams(clientParams: Record<string, string>): [string, string][];
  newBackendKey(): { pid: number; secret: Buffer };
  cancel(pid: number, secret: Buffer): void;
  onLogin(result: LoginResult): void;
  onRejected(reason: string, remote: string): void;
}

const enum Phase {
  Startup,
  SaslInitial,
  SaslContinue,
  Md5,
  Done,
}

const ADMIN_DATABASE = 'pgtide';

/** Handle one connection until it is logged in (then onLogin takes the socket) or refused. */
export function acceptConnection(host: HandshakeHost, socket: Socket, isTls = false): void {
  socket.setNoDelay(true);
  const reader = new FrontendReader();
  const remote = `${socket.remoteAddress}:${socket.remotePort}`;
  let phase = Phase.Startup;
  let user: UserConfig | undefined;
  let userName = '';
  let database = '';
  let params: Record<string, string> = {};
  let scram: ScramServerSession | null = null;
  let md5Salt: Buffer | null = null;

  const timer = setTimeout(() => fail(new PgtideError('LOGIN_TIMEOUT', 'login timed out', { sqlstate: '08006', severity: 'FATAL' })), LOGIN_TIMEOUT_MS);
  timer.unref();

  const detach = () => {
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('error', onError);
  };
  const fail = (err: unknown) => {
    if (phase === Phase.Done) return;
    phase = Phase.Done;
    detach();
    const fields = toErrorFields(err);
    fields.severity = 'FATAL';
    host.onRejected(fields.message, remote);
    if (!socket.destroyed) socket.end(bw.errorResponse(fields));
  };
  const onError = () => {
    phase = Phase.Done;
    detach();
    socket.destroy();
  };

  const succeed = () => {
    phase = Phase.Done;
    detach();
    const key = host.newBackendKey();
    const out: Buffer[] = [bw.authenticationOk()];
    for (const [k, v] of host.loginParams(params)) out.push(bw.parameterStatus(k, v));
    out.push(bw.backendKeyData(key.pid, key.secret), bw.readyForQuery('I'));
    socket.write(Buffer.concat(out));
    host.onLogin({ socket, reader, user: user!, database, params, pid: key.pid, secret: key.secret });
  };

  const startAuth = () => {
    const u = host.user(userName);
    user = u;
    const stored = u?.password ?? null;
    // md5 cannot check a SCRAM secret; SCRAM cannot use an md5 hash: use what the stored form allows.
    const useMd5 = stored !== null && (isMd5Hash(stored) || (host.authMethod === 'md5' && !isScramSecret(stored)));
    if (useMd5) {
      md5Salt = makeMd5Salt();
      phase = Phase.Md5;
      socket.write(bw.authenticationMD5Password(md5Salt));
      return;
    }
    // Unknown users run the whole exchange against a made-up secret, so names cannot be probed.
    scram = new ScramServerSession(u ? host.scramSecret(u) : null);
    phase = Phase.SaslInitial;
    socket.write(bw.authenticationSASL([SCRAM_SHA_256]));
  };

  const onStartup = (bytes: Buffer) => {
    const packet = parseStartupPacket(bytes);
    switch (packet.kind) {
      case 'ssl':
        if (reader.pendingBytes > 0) throw new PgtideError('SSL_PIPELINED', 'received unencrypted data after SSL request', { sqlstate: '08P01', severity: 'FATAL' });
        if (host.tlsContext && !isTls) {
          detach();
          phase = Phase.Done;
          socket.write('S');
          const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: host.tlsContext });
          secure.on('error', () => secure.destroy());
          acceptConnection(host, secure as unknown as Socket, true);
          return;
        }
        socket.write(bw.SSL_NO);
        reader.startupPhase = true;
        return;
      case 'gssenc':
        socket.write(bw.SSL_NO);
        reader.startupPhase = true;
        return;
      case 'cancel':
        phase = Phase.Done;
        detach();
        host.cancel(packet.pid, packet.secret);
        socket.destroy();
        return;
      case 'startup': {
        const major = packet.protocolVersion >>> 16;
        const minor = packet.protocolVersion & 0xffff;
        if (major !== 3) throw new PgtideError('UNSUPPORTED_PROTOCOL', `unsupported frontend protocol ${major}.${minor}: server supports 3.0`, { sqlstate: '0A000', severity: 'FATAL' });
        params = packet.params;
        const unsupported = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
        if (minor > 0 || unsupported.length > 0) socket.write(bw.negotiateProtocolVersion(0, unsupported));
        userName = params.user ?? '';
        if (!userName) throw new PgtideError('NO_USER', 'no PostgreSQL user name specified in startup packet', { sqlstate: '28000', severity: 'FATAL' });
        database = params.database || userName;
        if (params.replication && params.replication !== 'false' && params.replication !== 'off' && params.replication !== '0') {
          throw new PgtideError('REPLICATION', 'replication connections are not supported through pgtide', { sqlstate: '0A000', severity: 'FATAL' });
        }
        startAuth();
        return;
      }
    }
  };

  const checkDatabase = () => {
    if (database === ADMIN_DATABASE) {
      if (!user!.admin) throw new PgtideError('NOT_ADMIN', `user "${userName}" may not connect to the admin database "${ADMIN_DATABASE}"`, { sqlstate: '42501', severity: 'FATAL' });
      return;
    }
    if (database !== host.appDatabase) throw new PgtideError('UNKNOWN_DATABASE', `database "${database}" does not exist`, { sqlstate: '3D000', severity: 'FATAL' });
  };

  const onAuthMessage = (bytes: Buffer) => {
    switch (phase) {
      case Phase.SaslInitial: {
        const init = parseSASLInitialResponse(bytes);
        if (init.mechanism !== SCRAM_SHA_256) {
          throw new PgtideError('SASL_MECHANISM', 'client selected an invalid SASL authentication mechanism', { sqlstate: '28000', severity: 'FATAL' });
        }
        if (!init.data) throw new PgtideError('SASL_MALFORMED', 'malformed SCRAM message: empty client-first-message', { sqlstate: '08P01', severity: 'FATAL' });
        socket.write(bw.authenticationSASLContinue(scram!.start(init.data)));
        phase = Phase.SaslContinue;
        return;
      }
      case Phase.SaslContinue: {
        const result = scram!.finish(parseSASLResponse(bytes));
        if (!result.ok || !user) throw passwordAuthenticationFailed(userName);
        checkDatabase();
        socket.write(bw.authenticationSASLFinal(result.serverFinal!));
        succeed();
        return;
      }
      case Phase.Md5: {
        const response = parsePasswordMessage(bytes);
        if (!user || !verifyMd5Response(response, user.password, userName, md5Salt!)) throw passwordAuthenticationFailed(userName);
        checkDatabase();
        succeed();
        return;
      }
      default:
        throw new PgtideError('UNEXPECTED_MESSAGE', 'unexpected message during authentication', { sqlstate: '08P01', severity: 'FATAL' });
    }
  };

  const onData = (chunk: Buffer) => {
    try {
      reader.push(chunk);
      while (phase !== Phase.Done) {
        const msg = reader.next();
        if (!msg) return;
        if (phase === Phase.Startup) {
          if (msg.code !== 0) throw new PgtideError('UNEXPECTED_MESSAGE', 'expected a startup packet', { sqlstate: '08P01', severity: 'FATAL' });
          onStartup(msg.bytes);
        } else if (msg.code === FrontendCode.Password) {
          onAuthMessage(msg.bytes);
        } else if (msg.code === FrontendCode.Terminate) {
          phase = Phase.Done;
          detach();
          socket.end();
        } else {
          throw new PgtideError('UNEXPECTED_MESSAGE', `expected a password message, got message type "${String.fromCharCode(msg.code)}"`, { sqlstate: '08P01', severity: 'FATAL' });
        }
      }
    } catch (err) {
      fail(err);
    }
  };
  socket.on('data', onData);
  socket.on('error', onError);
}

/** SCRAM secret for a configured password (plaintext is derived once and cached by the caller). */
export function scramSecretFor(password: string): string | null {
  if (isScramSecret(password)) return password;
  if (isMd5Hash(password)) return null;
  return makeScramSecret(password);
}

export function randomSecret(): Buffer {
  return randomBytes(4);
}
