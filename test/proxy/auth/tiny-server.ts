// Test helper: a tiny Postgres-speaking server built only from pgtide's codec and auth modules (SCRAM, md5, cleartext).
import net from 'node:net';
import { FrontendReader } from '../../../proxy/protocol/frontend-reader.js';
import { parsePasswordMessage, parseQuery, parseSASLInitialResponse, parseSASLResponse, parseStartupPacket } from '../../../proxy/protocol/frontend-messages.js';
import * as bw from '../../../proxy/protocol/backend-writer.js';
import { toErrorFields } from '../../../proxy/protocol/errors.js';
import { ScramServerSession } from '../../../proxy/auth/scram.js';
import { makeMd5Salt, verifyMd5Response } from '../../../proxy/auth/md5.js';
import { passwordAuthenticationFailed } from '../../../proxy/auth/errors.js';

export type TinyAuth = { method: 'scram'; secret: string } | { method: 'md5'; stored: string } | { method: 'password'; password: string } | { method: 'trust' };

export interface TinyServer {
  port: number;
  /** startup parameters of every login, in order */
  logins: Record<string, string>[];
  close(): Promise<void>;
}

export interface TinyServerOptions {
  /** bytes written in the same packet right after the first ReadyForQuery (tests the hand-over) */
  afterReady?: Buffer;
}

/** Answers every Query with one row: column `answer` = the query text. */
export async function startTinyServer(auth: TinyAuth, opts: TinyServerOptions = {}): Promise<TinyServer> {
  const logins: Record<string, string>[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    const reader = new FrontendReader();
    let state: 'startup' | 'sasl-initial' | 'sasl-final' | 'password' | 'ready' = 'startup';
    let user = '';
    let scram: ScramServerSession | null = null;
    const salt = makeMd5Salt();
    const loginOk = (): void => {
      state = 'ready';
      sock.write(
        Buffer.concat([
          bw.authenticationOk(),
          bw.parameterStatus('server_version', '15.0 (tiny)'),
          bw.parameterStatus('client_encoding', 'UTF8'),
          bw.backendKeyData(4242, Buffer.from([1, 2, 3, 4])),
          bw.readyForQuery('I'),
          opts.afterReady ?? Buffer.alloc(0),
        ]),
      );
    };
    const refuse = (): void => {
      sock.end(bw.errorResponse(toErrorFields(passwordAuthenticationFailed(user))));
    };
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let m = reader.next(); m !== undefined; m = reader.next()) {
          switch (state) {
            case 'startup': {
              const p = parseStartupPacket(m.bytes);
              if (p.kind === 'ssl' || p.kind === 'gssenc') {
                sock.write(bw.SSL_NO);
                continue;
              }
              if (p.kind !== 'startup') return void sock.end();
              logins.push({ ...p.params });
              user = p.params['user'] ?? '';
              if (auth.method === 'scram') {
                state = 'sasl-initial';
                sock.write(bw.authenticationSASL(['SCRAM-SHA-256']));
              } else if (auth.method === 'md5') {
                state = 'password';
                sock.write(bw.authenticationMD5Password(salt));
              } else if (auth.method === 'password') {
                state = 'password';
                sock.write(bw.authenticationCleartextPassword());
              } else loginOk();
              break;
            }
            case 'sasl-initial': {
              const { mechanism, data } = parseSASLInitialResponse(m.bytes);
              if (mechanism !== 'SCRAM-SHA-256' || data === null || auth.method !== 'scram') throw new Error('unexpected SASL mechanism');
              scram = new ScramServerSession(auth.secret);
              sock.write(bw.authenticationSASLContinue(scram.start(data)));
              state = 'sasl-final';
              break;
            }
            case 'sasl-final': {
              const r = scram!.finish(parseSASLResponse(m.bytes));
              if (!r.ok) return refuse();
              sock.write(bw.authenticationSASLFinal(r.serverFinal!));
              loginOk();
              break;
            }
            case 'password': {
              const answer = parsePasswordMessage(m.bytes);
              const ok = auth.method === 'md5' ? verifyMd5Response(answer, auth.stored, user, salt) : auth.method === 'password' && answer === auth.password;
              if (!ok) return refuse();
              loginOk();
              break;
            }
            case 'ready':
              if (m.code === 0x58) return void sock.end();
              if (m.code === 0x51) {
                const sql = parseQuery(m.bytes);
                sock.write(
                  Buffer.concat([bw.rowDescription([{ name: 'answer', typeOid: 25 }]), bw.dataRow([sql]), bw.commandComplete('SELECT 1'), bw.readyForQuery('I')]),
                );
              }
              break;
          }
        }
      } catch (err) {
        sock.end(bw.errorResponse(toErrorFields(err)));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    logins,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
