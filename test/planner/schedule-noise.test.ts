// The scheduler does not wait for a "quieter" window that only the forecast's noise makes quieter.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pickStart } from '../../planner/index.js';
import { planResharding } from '../../planner/index.js';
import { HASH_END, HASH_MIN, type RoutingTable } from '../../config/types.js';

const STEP = 900_000;
const NOW = Date.UTC(2030, 0, 1, 22);
const grid = { nowMs: NOW, stepMs: STEP, steps: 24 };

/** A flat night at 100 load units/s whose forecast happens to dip to 85 three hours ahead. */
function flatNight(): Float64Array {
  const a = new Float64Array(24).fill(100);
  a[12] = 85;
  return a;
}

describe('pickStart and forecast noise', () => {
  it('a job without a deadline waits for the quietest step when nothing says the difference is noise', () => {
    const r = pickStart(grid, flatNight(), 300, undefined);
    assert.equal(r.startAtMs, NOW + 12 * STEP);
    assert.equal(r.reason, 'low-window');
  });

  it('starts now when now is within the forecast uncertainty of the quietest step', () => {
    const noise = new Float64Array(24).fill(20);
    const r = pickStart(grid, flatNight(), 300, undefined, undefined, 'earliest', noise);
    assert.equal(r.startAtMs, NOW);
    assert.equal(r.reason, 'now-no-deadline');
  });

  it('still waits for a window that is quieter beyond the uncertainty (the evening peak passing)', () => {
    const load = new Float64Array(24);
    for (let i = 0; i < 24; i++) load[i] = i < 8 ? 400 - 30 * i : 100;
    const r = pickStart(grid, load, 300, undefined, undefined, 'earliest', new Float64Array(24).fill(15));
    assert.equal(r.startAtMs, NOW + 8 * STEP, 'the first step of the quiet night, not now');
  });

  it('jobs that fill a new server keep their "latest" rule', () => {
    const noise = new Float64Array(24).fill(50);
    const a = pickStart(grid, flatNight(), 300, NOW + 20 * STEP, undefined, 'latest');
    const b = pickStart(grid, flatNight(), 300, NOW + 20 * STEP, undefined, 'latest', noise);
    assert.equal(b.startAtMs, a.startAtMs);
  });
});

/** A night plan: partitions 1 and 4 are cold halves; 4 lives on shard `p4Shard`. */
function nightPlan(p4Shard: number) {
  const routing: RoutingTable = {
    version: 1,
    shards: [0, 1, 2].map((id) => ({ id, url: '', state: 'active' as const })),
    keyspaces: [{ id: 1, name: 'k', family: 'int' }],
    tables: [{ name: 't', kind: 'sharded', keyColumn: 'id', keyType: 'int8', keyspaceId: 1 }],
    partitions: [
      { id: 1, keyspaceId: 1, lo: HASH_MIN, hi: -3n * 10n ** 18n, shardId: 0, state: 'active' },
      { id: 4, keyspaceId: 1, lo: -3n * 10n ** 18n, hi: -(10n ** 17n), shardId: p4Shard, state: 'active' },
      { id: 2, keyspaceId: 1, lo: -(10n ** 17n), hi: 3n * 10n ** 18n, shardId: 1, state: 'active' },
      { id: 3, keyspaceId: 1, lo: 3n * 10n ** 18n, hi: HASH_END, shardId: 2, state: 'active' },
    ],
  };
  // Two cold halves (≈ 3 units/s) and two busier partitions whose forecasts wobble by ±10 %.
  const steps = (base: number, wobble: number, seed: number) => Array.from({ length: 24 }, (_, i) => {
    const m = base * (1 + wobble * Math.sin(i * 1.3 + seed));
    return { mean: m, p10: m * 0.8, p50: m, p90: m * 1.2, p99: m * 1.5 };
  });
  const plan = planResharding({
    nowMs: NOW, routing,
    shards: [0, 1, 2].map((shardId) => ({ shardId, capacity: 1000 })), spareShards: [],
    forecasts: [
      { partitionId: 1, startMs: NOW, stepSeconds: 900, steps: steps(3, 0.1, 0), sizeBytes: 2e6, sizeRows: 1000 },
      { partitionId: 4, startMs: NOW, stepSeconds: 900, steps: steps(3, 0.1, 1), sizeBytes: 1e6, sizeRows: 500 },
      { partitionId: 2, startMs: NOW, stepSeconds: 900, steps: steps(12, 0.1, 2), sizeBytes: 2e6, sizeRows: 1000 },
      { partitionId: 3, startMs: NOW, stepSeconds: 900, steps: steps(12, 0.1, 3), sizeBytes: 2e6, sizeRows: 1000 },
    ],
    thresholds: { partitionMaxLoad: 100, partitionMinLoad: 10, shardMaxUtilization: 0.8, shardMinUtilization: 0.001, partitionMaxBytes: 1e12, targetP99Ms: 50, baseP99Ms: 5 },
    mover: { throughputBytesPerSec: 20e6, cutoverSeconds: 5 },
  });
  return plan;
}

describe('planResharding: a merge at night is not postponed by forecast noise', () => {
  it('the move of a merge starts now, not at a step the noise made quieter', () => {
    const plan = nightPlan(1);
    const move = plan.steps.find((s) => s.action.kind === 'move');
    const merge = plan.steps.find((s) => s.action.kind === 'merge');
    assert.ok(move && merge, JSON.stringify(plan.steps.map((s) => s.action), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    assert.equal(move.startAtMs, NOW, `the move back starts now (${move.startReason}), not at ${new Date(move.startAtMs).toISOString()}`);
    assert.deepEqual(merge.dependsOn, [move.n]);
  });

  it('a merge on one shard (metadata only) starts now', () => {
    const plan = nightPlan(0);
    assert.deepEqual(plan.steps.map((s) => s.action.kind), ['merge']);
    assert.equal(plan.steps[0]!.startAtMs, NOW);
    assert.equal(plan.steps[0]!.startReason, 'now-no-deadline');
  });
});
