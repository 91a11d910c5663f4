// Session settings (GUCs) a client expects, and the SQL that makes a pooled server match them.
//
// In transaction pooling a client meets a different server connection per transaction, so its
// startup parameters and its session-level SETs are replayed on whichever server it links to,
// and a server keeps what it was set to (PgBouncer's varcache idea, extended to any SET): the
// next client gets RESET for what it did not ask for, so no session state leaks between clients.

/** Startup packet keys that are not settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'replication', 'options']);

const GUC_NAME = /^[a-z_][a-z0-9_.]*$/;

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function setStatement(name: string, value: string): string {
  return `SET ${name} TO ${quoteLiteral(value)}`;
}

/** Parse libpq's `options` (`-c name=value` or `--name=value`, space separated, backslash escapes). */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  let escaped = false;
  let inWord = false;
  for (const ch of options) {
    if (escaped) {
      cur += ch;
      escaped = false;
      inWord = true;
    } else if (ch === '\\') {
      escaped = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (w === '-c' && i + 1 < words.length) w = words[++i]!;
    else if (w.startsWith('-c')) w = w.slice(2);
    else if (w.startsWith('--')) w = w.slice(2);
    else continue;
    const eq = w.indexOf('=');
    if (eq <= 0) continue;
    out.push([w.slice(0, eq).replace(/-/g, '_').toLowerCase(), w.slice(eq + 1)]);
  }
  return out;
}

/** The settings a client asked for at startup, as GUC name → SET statement. */
export function startupSettings(params: Record<string, string>): Map<string, string> {
  const settings = new Map<string, string>();
  for (const [k, v] of Object.entries(params)) {
    const name = k.toLowerCase();
    if (NOT_SETTINGS.has(name) || name.startsWith('_pq_.') || !GUC_NAME.test(name)) continue;
    settings.set(name, setStatement(name, v));
  }
  if (params.options) {
    for (const [name, value] of parseOptions(params.options)) {
      if (GUC_NAME.test(name)) settings.set(name, setStatement(name, value));
    }
  }
  return settings;
}

/**
 * SQL that turns a server's settings into the client's, or null when they already match.
 * `server` is updated to what it will hold once the SQL ran.
 */
export function syncSettings(server: Map<string, string>, client: ReadonlyMap<string, string>): string | null {
  let sql = '';
  for (const [name, stmt] of server) {
    if (!client.has(name)) {
      sql += `RESET ${name};`;
      server.delete(name);
    }
  }
  for (const [name, stmt] of client) {
    if (server.get(name) !== stmt) {
      sql += `${stmt};`;
      server.set(name, stmt);
    }
  }
  return sql === '' ? null : sql;
}

/** Whether a server holds exactly the client's settings (no SQL needed; nothing is changed). */
export function sameSettings(server: ReadonlyMap<string, string>, client: ReadonlyMap<string, string>): boolean {
  if (server.size !== client.size) return false;
  for (const [name, stmt] of client) if (server.get(name) !== stmt) return false;
  return true;
}
