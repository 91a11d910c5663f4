// A client on a raw socket, for what drivers cannot send (COPY by hand, several Binds before one
// Sync as pgjdbc's executeBatch does): logs in as the test clusters' md5 user (a two-message login
// is easy by hand), then writes messages and reads replies up to a message type.
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { APP_DB } from './cluster.js';
import { buildStartup } from '../../proxy/protocol/frontend-writer.js';
import { md5Response } from '../../proxy/auth/md5.js';

const loggedIn = new WeakSet<net.Socket>();

/** Log in on a raw socket (first call), send messages, read until a message of type `until`. */
export async function loginAndRun(sock: net.Socket, messages: Buffer[], until: string, skipLogin = false): Promise<Buffer> {
  if (!skipLogin && !loggedIn.has(sock)) {
    await rawLogin(sock);
    loggedIn.add(sock);
  }
  for (const m of messages) sock.write(m);
  return readUntil(sock, until);
}

/** Bytes received from now until (and with) the first message of type `code`. */
export function readUntil(sock: net.Socket, code: string): Promise<Buffer> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      let off = 0;
      while (off + 5 <= buf.length) {
        const len = buf.readInt32BE(off + 1);
        if (off + 1 + len > buf.length) break;
        if (buf[off] === code.charCodeAt(0)) {
          sock.removeListener('data', onData);
          resolve(buf);
          return;
        }
        off += 1 + len;
      }
    };
    sock.on('data', onData);
  });
}

async function rawLogin(sock: net.Socket): Promise<void> {
  // client_encoding as node-postgres sends it: the same session settings as the test's pg clients.
  sock.write(buildStartup({ user: 'md5user', database: APP_DB, client_encoding: 'UTF8' }));
  const auth = await readUntil(sock, 'R');
  const salt = auth.subarray(9, 13);
  sock.write(serialize.password(md5Response('md5-password', 'md5user', salt)));
  await readUntil(sock, 'Z');
}

/** The type letters of the messages in `buf`, in order ('1' ParseComplete, '2' BindComplete, 'C', 'E', 'Z'…). */
export function messageTypes(buf: Buffer): string {
  let out = '';
  for (let off = 0; off + 5 <= buf.length; off += 1 + buf.readInt32BE(off + 1)) out += String.fromCharCode(buf[off]!);
  return out;
}
