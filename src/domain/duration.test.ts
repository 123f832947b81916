import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ago, formatDuration, parseDuration } from './duration.js';

describe('durations', () => {
  it('reads milliseconds bare or with a unit, and nothing else', () => {
    assert.equal(parseDuration('1500'), 1500);
    assert.equal(parseDuration('1500ms'), 1500);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('5 minutes'), undefined);
    assert.equal(parseDuration('-1s'), undefined);
  });

  it('writes a duration in the largest unit that divides it', () => {
    assert.equal(formatDuration(300_000), '5m');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(1500), '1500ms');
  });

  it('says how long ago a time was, a time ahead of now reading as now', () => {
    const now = Date.parse('2026-12-03T12:00:00.000Z');
    const before = (ms: number) => new Date(now - ms).toISOString();
    assert.equal(ago(before(500), now), 'just now');
    assert.equal(ago(before(-5_000), now), 'just now');
    assert.equal(ago(before(42_000), now), '42s ago');
    assert.equal(ago(before(5 * 60_000), now), '5m ago');
    assert.equal(ago(before(3 * 3_600_000), now), '3h ago');
    assert.equal(ago(before(2 * 86_400_000), now), '2d ago');
    assert.equal(ago('not a time', now), 'not a time');
  });
});
