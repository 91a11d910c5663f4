// A CancelRequest for a node-postgres client, sent the way node-postgres itself does: a new
// connection carrying the client's backend key (pg has no public API for it).
import pg from 'pg';

interface CancelConnection {
  connect(port: number, host: string): void;
  on(event: string, fn: () => void): void;
  cancel(pid: number, key: number): void;
}

/** Resolves once the CancelRequest is written (the proxy answers nothing). */
export async function cancelQuery(client: pg.Client, port: number): Promise<void> {
  const conn = new (pg as unknown as { Connection: new () => CancelConnection }).Connection();
  const key = client as unknown as { processID: number; secretKey: number };
  await new Promise<void>((resolve) => {
    conn.on('connect', () => {
      conn.cancel(key.processID, key.secretKey);
      resolve();
    });
    conn.connect(port, '127.0.0.1');
  });
}
