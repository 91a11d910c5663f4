// Tests scheduled events: admin syntax, the HTTP feed, and multipliers learned from past occurrences.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventFeedError, EventSyntaxError } from '../../predictor/errors.js';
import { fetchEventFeed, learnMultipliers, parseDuration, parseScheduleEvent, type ScheduledEvent } from '../../predictor/events.js';
import { forecastStatistical } from '../../predictor/pipeline.js';
import { HOUR, T0, dailyWeekly, series } from './helpers.js';

test('SCHEDULE EVENT parses every clause', () => {
  const e = parseScheduleEvent("schedule event black_friday AT '2025-11-28 08:00:00+00' FOR '12 hours' ON Orders EXPECT 4.5;");
  assert.deepEqual(e, { name: 'black_friday', start: Date.UTC(2025, 10, 28, 8), durationMs: 12 * HOUR, table: 'orders', multiplier: 4.5 });
  const f = parseScheduleEvent("SCHEDULE EVENT promo AT '2025-01-01T10:00:00Z' FOR 'PT90M'");
  assert.equal(f.durationMs, 90 * 60_000);
  assert.equal(f.table, undefined);
  assert.equal(parseDuration('1h30m'), 90 * 60_000);
  assert.equal(parseDuration('01:30'), 90 * 60_000);
});

test('bad SCHEDULE EVENT input is a 42601 error with a clear message', () => {
  const bad: [string, RegExp][] = [
    ["SCHEDULE EVENT promo AT 'not a time' FOR '1 hour'", /invalid timestamp/],
    ["SCHEDULE EVENT promo AT '2025-01-01' FOR 'soon'", /invalid duration/],
    ["SCHEDULE EVENT promo AT '2025-01-01' FOR '1 hour' EXPECT -2", /EXPECT/],
    ["SCHEDULE EVENT promo AT '2025-01-01'", /expected FOR/],
    ["SCHEDULE EVENT AT '2025-01-01' FOR '1 hour'", /event name/],
    ["SCHEDULE EVENT promo AT '2025-01-01 FOR '1 hour'", /unterminated|FOR/],
    ["SCHEDULE EVENT promo AT '2025-01-01' FOR '1 hour' BANANA", /near "BANANA"/],
  ];
  for (const [sql, msg] of bad) {
    assert.throws(() => parseScheduleEvent(sql), (e: unknown) => e instanceof EventSyntaxError && e.sqlstate === '42601' && msg.test(e.message), sql);
  }
});

test('a multiplier is learned from past occurrences and applied to the next one', () => {
  const n = 1100; // the fifth occurrence starts at step 1110, inside the horizon
  const y = dailyWeekly(n + 48, 4, 0.05);
  const events: ScheduledEvent[] = [];
  // Every 9 days, 6 hours at 3× (off the weekly rhythm so the baseline is clean).
  for (let st = 30; st < n + 48; st += 24 * 9) {
    events.push({ name: 'promo', start: T0 + st * HOUR, durationMs: 6 * HOUR, multiplier: 2 });
    for (let i = st; i < Math.min(n + 48, st + 6); i++) y[i] = y[i]! * 3;
  }
  const learned = learnMultipliers(y.slice(0, n), T0, HOUR, events, 168).get('promo')!;
  assert.equal(learned.source, 'learned');
  assert.ok(Math.abs(learned.multiplier - 3) < 0.3, `learned ${learned.multiplier}`);
  // The next occurrence must be inside a 48-step forecast made at n.
  const next = events.find((e) => (e.start as number) >= T0 + n * HOUR && (e.start as number) < T0 + (n + 40) * HOUR);
  assert.ok(next, 'fixture: an occurrence in the horizon');
  const f = forecastStatistical({ name: 's', series: series(y.slice(0, n)) }, { horizon: 48, events, model: 'hw' });
  const k0 = ((next.start as number) - (T0 + n * HOUR)) / HOUR;
  for (let k = k0; k < k0 + 6; k++) {
    const ratio = f.steps[k]!.mean / y[n + k]!;
    assert.ok(ratio > 0.7 && ratio < 1.4, `step ${k}: forecast/actual ${ratio}`);
  }
  assert.ok(f.notes.some((s) => /promo: multiplier .* learned from \d+ past/.test(s)), f.notes.join('\n'));
});

test('EXPECT is used for an event never seen before', () => {
  const n = 24 * 7 * 4;
  const y = dailyWeekly(n, 5, 0.05);
  const ev: ScheduledEvent = { name: 'launch', start: T0 + (n + 10) * HOUR, durationMs: 4 * HOUR, multiplier: 2 };
  const plain = forecastStatistical({ name: 's', series: series(y) }, { horizon: 24, model: 'hw' });
  const withEv = forecastStatistical({ name: 's', series: series(y) }, { horizon: 24, model: 'hw', events: [ev] });
  assert.ok(Math.abs(withEv.steps[11]!.mean / plain.steps[11]!.mean - 2) < 1e-9);
  assert.equal(withEv.steps[20]!.mean, plain.steps[20]!.mean);
});

test('fetchEventFeed reads a JSON list from an HTTP server and rejects bad entries', async () => {
  let body = JSON.stringify([{ name: 'sale', start: '2025-03-01T09:00:00Z', durationMs: 7_200_000, table: 'orders', multiplier: 3 }]);
  let status = 200;
  const server = createServer((_req, res) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(body); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  try {
    assert.deepEqual(await fetchEventFeed(url), [{ name: 'sale', start: Date.UTC(2025, 2, 1, 9), durationMs: 7_200_000, table: 'orders', multiplier: 3 }]);
    body = JSON.stringify([{ name: 'sale', start: 'yesterday', durationMs: 1 }]);
    await assert.rejects(fetchEventFeed(url), (e: unknown) => e instanceof EventFeedError && /start/.test(e.message));
    body = '{"not": "a list"}';
    await assert.rejects(fetchEventFeed(url), EventFeedError);
    status = 503;
    await assert.rejects(fetchEventFeed(url), /HTTP 503/);
  } finally {
    server.close();
  }
});
