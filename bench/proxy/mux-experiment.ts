// Experiment, not a product path: does pipelining many clients' autocommit queries over a few
// server connections beat the bare pipe (one server connection per client) on this machine?
// A Node proxy that can only do pgbench -S -M simple: it answers the client's startup itself (no
// password check), keeps SERVERS authenticated server connections, and writes each client's Query
// to the server with the fewest queries in flight, coalescing the writes of one event-loop turn
// (cork/uncork). Each server's replies are split on ReadyForQuery and handed back in FIFO order.
// Side by side with the bare pipe and direct, same server, interleaved rounds:
//   node dist/bench/proxy/mux-experiment.js      (SERVERS=2 ROUNDS=5 SECONDS=6 CLIENTS=8)
import net from 'node:net';
import { ServerConnection } from '../../proxy/backend/server-connection.js';
import * as bw from '../../proxy/protocol/backend-writer.js';
import { pgbenchInit, runPgbench, startBarePipe, startScratchPostgres } from './pgbench.js';

const env = (k: string, d: number) => Number(process.env[k] ?? d);

interface Server {
  socket: net.Socket;
  inFlight: net.Socket[];
  pending: Buffer | null;
  corked: boolean;
}

async function startMux(port: number, password: string, n: number): Promise<{ port: number; close(): void }> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const c = await ServerConnection.connect({ host: '127.0.0.1', port, user: 'postgres', password, database: 'bench' });
    const s: Server = { socket: c.socket, inFlight: [], pending: null, corked: false };
    c.socket.on('data', (chunk: Buffer) => onServerData(s, chunk));
    c.socket.resume();
    servers.push(s);
  }
  function onServerData(s: Server, chunk: Buffer): void {
    let buf = s.pending ? Buffer.concat([s.pending, chunk]) : chunk;
    s.pending = null;
    let from = 0;
    let at = 0;
    while (at + 5 <= buf.length) {
      const len = buf.readInt32BE(at + 1);
      if (at + 1 + len > buf.length) break;
      const code = buf[at]!;
      at += 1 + len;
      if (code === 0x5a) { // ReadyForQuery ends one client's reply
        s.inFlight.shift()!.write(buf.subarray(from, at));
        from = at;
      }
    }
    if (from < buf.length) s.pending = Buffer.from(buf.subarray(from));
    buf = Buffer.alloc(0);
  }
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    let startup = true;
    let pending: Buffer | null = null;
    client.on('data', (chunk: Buffer) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      let at = 0;
      for (;;) {
        if (startup) {
          if (buf.length - at < 8) break;
          const len = buf.readInt32BE(at);
          if (buf.length - at < len) break;
          const code = buf.readInt32BE(at + 4);
          at += len;
          if (code === 80877103) { client.write(bw.SSL_NO); continue; } // SSLRequest
          startup = false;
          client.write(Buffer.concat([bw.authenticationOk(), bw.parameterStatus('server_version', '15.0'), bw.parameterStatus('client_encoding', 'UTF8'),
            bw.parameterStatus('standard_conforming_strings', 'on'), bw.parameterStatus('integer_datetimes', 'on'), bw.backendKeyData(1, Buffer.alloc(4)), bw.readyForQuery('I')]));
          continue;
        }
        if (buf.length - at < 5) break;
        const len = buf.readInt32BE(at + 1);
        if (buf.length - at < 1 + len) break;
        const code = buf[at]!;
        const msg = buf.subarray(at, at + 1 + len);
        at += 1 + len;
        if (code === 0x58) { client.end(); return; } // Terminate
        // The server with the fewest queries in flight (ties: the first).
        let s = servers[0]!;
        for (const x of servers) if (x.inFlight.length < s.inFlight.length) s = x;
        s.inFlight.push(client);
        if (!s.corked) {
          s.corked = true;
          s.socket.cork();
          process.nextTick(() => { s.corked = false; s.socket.uncork(); });
        }
        s.socket.write(msg);
      }
      if (at < buf.length) pending = Buffer.from(buf.subarray(at));
    });
    client.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => { server.close(); for (const s of servers) s.socket.destroy(); } };
}

const password = 'bench-password';
const scratch = await startScratchPostgres('pgtide-mux-', password);
const pgs = scratch.server;
try {
  await pgbenchInit(pgs);
  const pipe = await startBarePipe(pgs.port);
  const mux = await startMux(pgs.port, password, env('SERVERS', 2));
  const t = (name: string, port: number) => ({ name, port, user: 'postgres', password, database: 'bench' });
  const targets = [t('direct', pgs.port), t('bare-pipe', pipe.port), t(`mux-${env('SERVERS', 2)}`, mux.port)];
  const clients = env('CLIENTS', 8);
  for (const x of targets) await runPgbench(x, clients, 2);
  const tps = new Map<string, number[]>(targets.map((x) => [x.name, []]));
  for (let r = 0; r < env('ROUNDS', 5); r++) {
    for (const x of targets) tps.get(x.name)!.push((await runPgbench(x, clients, env('SECONDS', 6))).tps);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pipeTps = med(tps.get('bare-pipe')!);
  for (const [name, xs] of tps) process.stdout.write(`${name.padEnd(10)} median ${med(xs).toFixed(0)} TPS (${xs.map((x) => x.toFixed(0)).join(', ')}); ${(med(xs) / pipeTps).toFixed(2)}x the pipe\n`);
  mux.close();
  await pipe.close();
} finally {
  await scratch.stop();
}
