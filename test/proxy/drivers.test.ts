// Standard drivers through the proxy: libpq (psql, pgbench), Python (psycopg2) and JDBC (pgjdbc), where installed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestCluster, APP_PASSWORD, type TestCluster } from '../helpers/cluster.js';

const exec = promisify(execFile);
let cluster: TestCluster;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgtide-drivers-'));
  cluster = await startTestCluster({ shards: 2, twoPhaseCommit: true });
  const app = await cluster.client();
  await app.query('CREATE TABLE acct (id bigint PRIMARY KEY, v int NOT NULL)');
  await (await cluster.admin()).query('SHARD TABLE acct BY (id)');
  await app.query(`INSERT INTO acct (id, v) VALUES ${Array.from({ length: 50 }, (_, i) => `(${i}, 0)`).join(',')}`);
});
after(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function has(cmd: string): Promise<boolean> {
  try {
    await exec('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

test('psql (libpq): multi-statement scripts, \\copy-free DML, errors with SQLSTATE', async (t) => {
  if (!(await has('psql'))) return t.skip('psql is not installed');
  const { stdout } = await exec('psql', [cluster.url, '-At', '-v', 'ON_ERROR_STOP=1', '-c', 'UPDATE acct SET v = v + 1 WHERE id = 3', '-c', 'SELECT v FROM acct WHERE id = 3']);
  assert.match(stdout, /UPDATE 1\n1/);
  await assert.rejects(exec('psql', [cluster.url, '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT * FROM nope']), /does not exist/);
});

test('pgbench in simple, extended and prepared modes: no failed transactions', async (t) => {
  if (!(await has('pgbench'))) return t.skip('pgbench is not installed');
  const u = new URL(cluster.url);
  const script = join(dir, 'bench.sql');
  writeFileSync(script, '\\set id random(0, 49)\nSELECT v FROM acct WHERE id = :id;\nUPDATE acct SET v = v + 1 WHERE id = :id;\n');
  for (const mode of ['simple', 'extended', 'prepared']) {
    const { stdout } = await exec('pgbench', ['-n', '-M', mode, '-c', '4', '-t', '50', '-f', script, '-h', '127.0.0.1', '-p', u.port, '-U', 'app', 'app'], { env: { ...process.env, PGPASSWORD: APP_PASSWORD } });
    assert.match(stdout, /number of transactions actually processed: 200\/200/, `${mode}: ${stdout}`);
    assert.match(stdout, /number of failed transactions: 0 /);
  }
});

test('psycopg2 (Python, not autocommit): inserts across shards commit as one transaction', async (t) => {
  const python = ['/usr/bin/python3', 'python3'].find((p) => p.startsWith('/') ? existsSync(p) : true)!;
  try {
    await exec(python, ['-c', 'import psycopg2']);
  } catch {
    return t.skip('psycopg2 is not installed (apt-get install python3-psycopg2)');
  }
  const { stdout } = await exec(python, ['-c', `
import psycopg2
conn = psycopg2.connect(${JSON.stringify(cluster.url)})
cur = conn.cursor()
for i in range(100, 140):
    cur.execute("INSERT INTO acct (id, v) VALUES (%s, %s)", (i, i))
conn.commit()
cur.execute("SELECT v FROM acct WHERE id = %s", (117,))
print(cur.fetchone()[0])
cur.execute("SELECT count(*) FROM acct WHERE id >= 100")
print(cur.fetchone()[0])
conn.close()
`]);
  assert.deepEqual(stdout.trim().split('\n'), ['117', '40']);
});

test('pgjdbc (Java): transactions across shards, server-side prepared statements, scatter aggregate', async (t) => {
  const jar = ['/usr/share/java/postgresql.jar'].find((p) => existsSync(p));
  if (!jar || !(await has('javac')) || !(await has('java'))) return t.skip('javac or the pgjdbc jar is not installed (apt-get install libpostgresql-jdbc-java)');
  const u = new URL(cluster.url);
  writeFileSync(join(dir, 'J.java'), `
import java.sql.*;
public class J { public static void main(String[] a) throws Exception {
  Connection conn = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:${u.port}/app", "app", "${APP_PASSWORD}");
  conn.setAutoCommit(false);
  PreparedStatement ps = conn.prepareStatement("UPDATE acct SET v = v + 1000 WHERE id = ?");
  for (int i = 10; i < 20; i++) { ps.setLong(1, i); ps.executeUpdate(); }
  conn.commit();
  conn.setAutoCommit(true);
  PreparedStatement q = conn.prepareStatement("SELECT v FROM acct WHERE id = ?");
  int last = 0;
  for (int i = 0; i < 8; i++) { q.setLong(1, 15); ResultSet rs = q.executeQuery(); rs.next(); last = rs.getInt(1); }
  System.out.println(last >= 1000 ? "ok" : "bad " + last);
  ResultSet rs = conn.createStatement().executeQuery("SELECT count(*) FROM acct WHERE v >= 1000");
  rs.next();
  System.out.println(rs.getLong(1));
  conn.close();
}}`);
  await exec('javac', ['-d', dir, join(dir, 'J.java')]);
  const { stdout } = await exec('java', ['-cp', `${dir}:${jar}`, 'J']);
  assert.deepEqual(stdout.trim().split('\n'), ['ok', '10']);
});
