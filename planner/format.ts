// Formatting helpers for plan texts a DBA reads: loads, bytes, durations, times and hashes.

export function fmtLoad(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  return (Math.round(x * 10) / 10).toLocaleString('en-US');
}

export function fmtBytes(b: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = b;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '∞';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds - h * 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** "Tue 2025-03-04 14:30 UTC": day names matter to a DBA reading a weekly pattern. */
export function fmtTime(ms: number): string {
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  return `${day} ${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Signed hash as Postgres prints it (hashint8extended returns bigint). */
export function fmtHash(h: bigint): string {
  return h.toString();
}

export function fmtPct(x: number): string {
  return `${Math.round(x * 100)} %`;
}
