// The autopilot's reactive input to the planner: the last interval's load and the one before it
// (the planner's surge detection, PlannerKnobs.surgeRise).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { actualLoads } from '../../autopilot/autopilot.js';

test('actualLoads: last interval as load, the one before as previous; no previous for a series that starts at the last interval', () => {
  const stepMs = 300_000;
  const endMs = 10 * stepMs;
  const out = actualLoads(
    [
      { partitionId: 1, startMs: endMs - 2 * stepMs, stepMs, values: [120, 250] },
      { partitionId: 2, startMs: endMs - stepMs, stepMs, values: [80] },
      { partitionId: 3, startMs: endMs - 2 * stepMs, stepMs, values: [null, 40] },
      { partitionId: 4, startMs: endMs - 2 * stepMs, stepMs, values: [60, null] },
    ],
    endMs,
  );
  assert.deepEqual(out, [
    { partitionId: 1, load: 250, previous: 120 },
    { partitionId: 2, load: 80 },
    { partitionId: 3, load: 40 },
  ]);
});
