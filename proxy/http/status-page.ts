// Renders the status page: shards, the partition map coloured by load, recent load and forecasts (pure).

export interface StatusData {
  generatedAt: number;
  proxy: { version: number; leader: boolean; state: string; proxyId: number; clients: number };
  shards: { id: number; state: string; pool: { open: number; idle: number; waiting: number; lastError: string | null } | null }[];
  keyspaces: { id: number; name: string; tables: string[] }[];
  partitions: { id: number; keyspaceId: number; lo: string; hi: string; shardId: number; state: string }[];
  /** Statements per partition over the last 5 minutes, summed over proxies. */
  load: { partitionId: number; ops: number }[];
  /** Statements per partition and interval over the last 30 minutes. */
  history: { partitionId: number; t: number; ops: number }[];
  /** Forecast vs actual per partition: point forecast with its 10–90 % band. */
  forecast: { partitionId: number; points: { t: number; actual: number | null; mean: number; lo: number; hi: number }[] }[];
}

const SHARD_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const HASH_SPAN = 2n ** 64n;
const HASH_MIN = -(2n ** 63n);

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** White → orange → dark red as load goes from none to the hottest partition. */
function heat(fraction: number): string {
  const f = Math.max(0, Math.min(1, fraction));
  const r = 255;
  const g = Math.round(245 - 200 * f);
  const b = Math.round(235 - 215 * f);
  return `rgb(${Math.round(r - 90 * Math.max(0, f - 0.6))},${g},${b})`;
}

function x(hash: string, width: number): number {
  return Number(((BigInt(hash) - HASH_MIN) * 10000n) / HASH_SPAN) / 10000 * width;
}

function partitionMap(d: StatusData): string {
  const loadOf = new Map(d.load.map((l) => [l.partitionId, l.ops]));
  const max = Math.max(1, ...d.load.map((l) => l.ops));
  const width = 960;
  return d.keyspaces.map((ks) => {
    const parts = d.partitions.filter((p) => p.keyspaceId === ks.id);
    const rects = parts.map((p) => {
      const x0 = x(p.lo, width);
      const w = Math.max(1, x(p.hi, width) - x0);
      const ops = loadOf.get(p.id) ?? 0;
      const color = SHARD_COLORS[p.shardId % SHARD_COLORS.length]!;
      const ink = ops / max > 0.6 ? '#fff' : '#222';
      const label = w > 28 ? `<text x="${(x0 + w / 2).toFixed(1)}" y="34" text-anchor="middle" font-size="11" fill="${ink}">p${p.id}</text><text x="${(x0 + w / 2).toFixed(1)}" y="50" text-anchor="middle" font-size="10" fill="${ink}">s${p.shardId}</text>` : '';
      return `<g class="partition" data-partition="${p.id}" data-shard="${p.shardId}" data-ops="${ops}"><title>partition ${p.id} · shard ${p.shardId} · ${p.state} · [${p.lo}, ${p.hi}) · ${Math.round(ops)} statements in 5 min</title>`
        + `<rect x="${x0.toFixed(1)}" y="18" width="${w.toFixed(1)}" height="40" fill="${heat(ops / max)}" stroke="${color}" stroke-width="3"/>${label}</g>`;
    }).join('');
    return `<h3>key space <code>${esc(ks.name)}</code> <small>${ks.tables.map(esc).join(', ') || 'no tables'}</small></h3>`
      + `<svg class="partition-map" viewBox="0 0 ${width} 64" width="100%" role="img" aria-label="partition map of ${esc(ks.name)}">`
      + `<text x="0" y="12" font-size="10" fill="#777">-2^63</text><text x="${width}" y="12" font-size="10" fill="#777" text-anchor="end">2^63</text>${rects}</svg>`;
  }).join('') || '<p>No sharded tables yet: <code>SHARD TABLE t BY (col)</code> in the admin console.</p>';
}

function lineChart(series: { label: string; points: { t: number; v: number }[]; color: string; dashed?: boolean }[], band?: { t: number; lo: number; hi: number }[]): string {
  const all = series.flatMap((s) => s.points);
  const bandPts = band ?? [];
  if (all.length === 0) return '<p class="empty">No load recorded yet.</p>';
  const w = 960;
  const h = 200;
  const t0 = Math.min(...all.map((p) => p.t), ...bandPts.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t), ...bandPts.map((p) => p.t), t0 + 1);
  const vmax = Math.max(1, ...all.map((p) => p.v), ...bandPts.map((p) => p.hi));
  const px = (t: number) => ((t - t0) / (t1 - t0)) * (w - 40) + 35;
  const py = (v: number) => h - 20 - (v / vmax) * (h - 30);
  const bandPath = bandPts.length > 1
    ? `<path d="M${bandPts.map((p) => `${px(p.t).toFixed(1)},${py(p.hi).toFixed(1)}`).join(' L')} L${[...bandPts].reverse().map((p) => `${px(p.t).toFixed(1)},${py(p.lo).toFixed(1)}`).join(' L')} Z" fill="#9ecae1" opacity="0.5"/>`
    : '';
  // Dots as well as lines: a series with one interval so far still shows.
  const lines = series.map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dashed ? 'stroke-dasharray="5,4"' : ''} points="${s.points.map((p) => `${px(p.t).toFixed(1)},${py(p.v).toFixed(1)}`).join(' ')}"><title>${esc(s.label)}</title></polyline>`
    + s.points.map((p) => `<circle cx="${px(p.t).toFixed(1)}" cy="${py(p.v).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(s.label)}: ${Math.round(p.v)} at ${new Date(p.t).toISOString()}</title></circle>`).join('')).join('');
  const legend = series.map((s, i) => `<text x="${40 + i * 120}" y="${h - 4}" font-size="11" fill="${s.color}">${esc(s.label)}</text>`).join('');
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" width="100%"><line x1="35" y1="${h - 20}" x2="${w}" y2="${h - 20}" stroke="#ccc"/><text x="0" y="14" font-size="10" fill="#777">${Math.round(vmax)}</text>${bandPath}${lines}${legend}</svg>`;
}

function loadChart(d: StatusData): string {
  const byPartition = new Map<number, { t: number; v: number }[]>();
  for (const h of d.history) {
    let l = byPartition.get(h.partitionId);
    if (!l) byPartition.set(h.partitionId, (l = []));
    l.push({ t: h.t, v: h.ops });
  }
  const top = [...byPartition].sort((a, b) => b[1].reduce((n, p) => n + p.v, 0) - a[1].reduce((n, p) => n + p.v, 0)).slice(0, 8);
  return lineChart(top.map(([id, points], i) => ({ label: `p${id}`, points, color: SHARD_COLORS[i % SHARD_COLORS.length]! })));
}

function forecastCharts(d: StatusData): string {
  if (d.forecast.length === 0) return '<p class="empty">No forecast yet (the leader forecasts once enough load history exists).</p>';
  return d.forecast.slice(0, 4).map((f) => `<h3>partition ${f.partitionId}</h3>` + lineChart([
    { label: 'actual', points: f.points.filter((p) => p.actual !== null).map((p) => ({ t: p.t, v: p.actual! })), color: '#333' },
    { label: 'forecast', points: f.points.map((p) => ({ t: p.t, v: p.mean })), color: '#08519c', dashed: true },
  ], f.points.map((p) => ({ t: p.t, lo: p.lo, hi: p.hi })))).join('');
}

export function renderStatusPage(d: StatusData): string {
  const shards = d.shards.map((s) => `<tr><td><span class="dot" style="background:${SHARD_COLORS[s.id % SHARD_COLORS.length]}"></span> shard ${s.id}</td><td>${esc(s.state)}</td>`
    + `<td>${d.partitions.filter((p) => p.shardId === s.id).length}</td><td>${s.pool ? `${s.pool.open} open, ${s.pool.idle} idle, ${s.pool.waiting} waiting` : '—'}</td>`
    + `<td class="err">${s.pool?.lastError ? esc(s.pool.lastError) : ''}</td></tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pgtide status</title><meta http-equiv="refresh" content="10">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1040px}
 h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #eee}
 h3{font-size:13px;margin:12px 0 4px;font-weight:600} small{color:#777;font-weight:normal}
 table{border-collapse:collapse} td,th{padding:4px 10px;border-bottom:1px solid #f0f0f0;text-align:left}
 .dot{display:inline-block;width:10px;height:10px;border-radius:50%} .err{color:#b00} .empty{color:#777}
 .meta{color:#555} code{background:#f6f6f6;padding:1px 4px}
</style></head><body>
<h1>pgtide</h1>
<div class="meta">routing version <b id="routing-version">${d.proxy.version}</b> · proxy ${d.proxy.proxyId} (${esc(d.proxy.state)}${d.proxy.leader ? ', leader' : ''}) · ${d.proxy.clients} clients · ${new Date(d.generatedAt).toISOString()}</div>
<h2>Shards</h2>
<table id="shards"><tr><th>shard</th><th>state</th><th>partitions</th><th>pool</th><th></th></tr>${shards}</table>
<h2>Partition map</h2>
<p class="meta">Each bar is the signed 64-bit hash space; a box is a partition (outline = owner shard, fill = statements in the last 5 minutes).</p>
<div id="partition-map">${partitionMap(d)}</div>
<h2>Recent load per partition</h2>
<div id="load-chart">${loadChart(d)}</div>
<h2>Forecast vs actual</h2>
<div id="forecast">${forecastCharts(d)}</div>
</body></html>`;
}
