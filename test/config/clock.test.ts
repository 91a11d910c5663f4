// The compressed clock's mapping between real and simulated time (the e2e autopilot test runs on it).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CompressedClock, wallClock } from '../../config/clock.js';

describe('CompressedClock', () => {
  it('maps real time to simulated time at the given scale, and back', () => {
    let real = 1_000_000;
    const clock = new CompressedClock({ simStartMs: Date.UTC(2030, 0, 1), scale: 900, realNow: () => real });
    assert.equal(clock.realStartMs, 1_000_000, 'the real start defaults to the real clock at construction');
    assert.equal(clock.now(), Date.UTC(2030, 0, 1));
    real += 1000;
    assert.equal(clock.now(), Date.UTC(2030, 0, 1, 0, 15), 'one real second is 15 simulated minutes');
    assert.equal(clock.toSim(1_000_000 + 96_000), Date.UTC(2030, 0, 2), 'a simulated day takes 96 real seconds');
    assert.equal(clock.toReal(Date.UTC(2030, 0, 1, 6)), 1_000_000 + 24_000);
    assert.equal(clock.toSim(clock.toReal(Date.UTC(2030, 0, 1, 13, 37))), Date.UTC(2030, 0, 1, 13, 37));
    assert.equal(clock.realUntil(Date.UTC(2030, 0, 1, 1)), 3000, 'the simulated 01:00 is 3 real seconds away at 00:15');
    assert.equal(clock.realUntil(Date.UTC(2030, 0, 1)), -1000, 'a simulated instant that has passed is negative');
    assert.equal(clock.scale, 900);
  });

  it('refuses a scale that is not a positive number; the wall clock is the identity', () => {
    assert.throws(() => new CompressedClock({ simStartMs: 0, scale: 0 }), RangeError);
    assert.throws(() => new CompressedClock({ simStartMs: 0, scale: -2 }), RangeError);
    assert.throws(() => new CompressedClock({ simStartMs: 0, scale: Number.NaN }), RangeError);
    assert.equal(wallClock.scale, 1);
    const before = Date.now();
    const t = wallClock.now();
    assert.ok(t >= before && t <= Date.now());
  });
});
