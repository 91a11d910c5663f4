// The status page in a real headless browser (Debian chromium via playwright-core), plus /metrics and /healthz.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster({ shards: 2, recordIntervalMs: 1000 });
  const app = await cluster.client();
  await app.query('CREATE TABLE pageviews (id bigint PRIMARY KEY, n int)');
  await (await cluster.admin()).query('SHARD TABLE pageviews BY (id)');
  for (let i = 0; i < 300; i++) await app.query('SELECT n FROM pageviews WHERE id = $1', [i % 10 === 0 ? i : 3]);
  await cluster.proxy.member.flush();
});
after(async () => {
  await cluster?.stop();
});

test('/metrics exposes query counts, per-shard latency histograms, pool state and routing version', async () => {
  const res = await fetch(`http://127.0.0.1:${cluster.proxy.httpPort}/metrics`);
  assert.equal(res.status, 200);
  const body = await res.text();
  const queries = Number(/^pgtide_queries_total (\d+)/m.exec(body)?.[1]);
  assert.ok(queries >= 300, `pgtide_queries_total = ${queries}`);
  assert.match(body, /^pgtide_statement_duration_seconds_bucket\{shard="0",le="0\.001"\} \d+/m);
  assert.match(body, /^pgtide_statement_duration_seconds_count\{shard="1"\} \d+/m);
  assert.match(body, /^pgtide_pool_connections\{shard="0",state="idle"\} \d+/m);
  assert.match(body, new RegExp(`^pgtide_routing_version ${cluster.proxy.server.routing().version}$`, 'm'));
  assert.match(body, /^pgtide_recorder_lag_seconds [\d.]+$/m);
  const health = await fetch(`http://127.0.0.1:${cluster.proxy.httpPort}/healthz`);
  assert.equal(health.status, 200);
  assert.equal((await health.json() as { status: string }).status, 'ok');
});

test('the status page renders in headless chromium with the partition map visible', async (t) => {
  if (!CHROMIUM) {
    t.skip('chromium is not installed (.ci/run installs it; elsewhere: apt-get install chromium)');
    return;
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`http://127.0.0.1:${cluster.proxy.httpPort}/`);
    assert.equal(await page.title(), 'pgtide status');
    const map = page.locator('svg.partition-map').first();
    assert.ok(await map.isVisible(), 'the partition map is visible');
    const boxes = page.locator('svg.partition-map g.partition');
    assert.equal(await boxes.count(), 8, 'one box per partition');
    const box = await boxes.first().boundingBox();
    assert.ok(box && box.width > 50 && box.height > 20, `partition boxes have a size: ${JSON.stringify(box)}`);
    // The hot partition (key 3) is drawn hotter than an idle one.
    const ops = await boxes.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-ops'))));
    assert.ok(Math.max(...ops) >= 270, `hot partition load ${Math.max(...ops)}`);
    const fills = await page.locator('svg.partition-map g.partition rect').evaluateAll((els) => els.map((e) => e.getAttribute('fill')));
    assert.ok(new Set(fills).size > 1, 'partitions are coloured by load');
    assert.ok(await page.locator('#load-chart svg polyline').count() >= 1, 'the load chart has lines');
    assert.ok(await page.locator('#shards tr').count() === 3, 'two shard rows and a header');
    await page.screenshot({ path: `${process.env.PGTIDE_SCREENSHOT_DIR ?? '/tmp'}/pgtide-status.png` });
  } finally {
    await browser.close();
  }
});
