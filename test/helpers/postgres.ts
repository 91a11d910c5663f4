// Test helper: start throw-away embedded Postgres servers on free ports and always stop them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedServer, type AuthMethod, type EmbeddedServer } from '../../cli/embedded-server.js';

export interface TestServer extends EmbeddedServer {
  /** A connected node-postgres client on `database` (default postgres); closed by stop(). */
  client(database?: string): Promise<pg.Client>;
}

const running = new Set<TestServer>();

export async function startTestServer(opts: { authMethod?: AuthMethod; settings?: Record<string, string | number>; password?: string } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pgtide-test-'));
  const port = await freePort();
  const server = await startEmbeddedServer({
    dataDir,
    port,
    user: 'postgres',
    password: opts.password ?? 'test-password',
    authMethod: opts.authMethod,
    settings: opts.settings,
    ephemeral: true,
  });
  const clients: pg.Client[] = [];
  const handle: TestServer = {
    ...server,
    async client(database = 'postgres') {
      const c = new pg.Client({ connectionString: server.url(database) });
      await c.connect();
      clients.push(c);
      return c;
    },
    async stop() {
      running.delete(handle);
      await Promise.allSettled(clients.map((c) => c.end()));
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(handle);
  return handle;
}

/** Stop every server this process started (use in `after`). */
export async function stopAllTestServers(): Promise<void> {
  await Promise.allSettled([...running].map((s) => s.stop()));
}
