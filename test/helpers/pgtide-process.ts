// Test helper: run the `pgtide` command as a child process until it prints its ready line; kill them all in `after`.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const children = new Set<ChildProcess>();

/** Start `pgtide ARGS`; resolves with the proxy port once it printed `pgtide ready: …`, rejects if it exits first. */
export function startPgtideProcess(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /pgtide ready: postgres:\/\/[^@]+@127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.on('exit', (code) => reject(new Error(`pgtide exited (${code}): ${stderr.slice(-1500)}`)));
  });
}

export function killAllPgtideProcesses(): void {
  for (const c of children) c.kill('SIGKILL');
}
