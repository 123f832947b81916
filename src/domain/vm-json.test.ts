import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ISO_TIMESTAMP_BYTES, isoTimestamp, vmJson, vmJsonParts, vmJsonSize, vmJsonString, writeIsoTimestamp, writeVmJson } from './vm-json.js';

/** Years 0 to 9999, the range whose ISO form is 24 characters. */
const timestamps = fc.integer({ min: Date.parse('0000-01-01T00:00:00.000Z'), max: Date.parse('9999-12-31T23:59:59.999Z') });

describe('VM JSON text', () => {
  it('writes every timestamp exactly as Date#toISOString formats it', () => {
    fc.assert(
      fc.property(timestamps, (ms) => {
        const target = Buffer.alloc(ISO_TIMESTAMP_BYTES + 2, '#');
        writeIsoTimestamp(target, 1, ms);
        assert.equal(target.toString('latin1'), `#${new Date(ms).toISOString()}#`);
      }),
      { numRuns: 5000 },
    );
    // Consecutive writes share the day's prefix: a new day must not keep the old one.
    const target = Buffer.alloc(ISO_TIMESTAMP_BYTES);
    for (const ms of [Date.UTC(2026, 10, 27, 23, 59, 59, 999), Date.UTC(2026, 10, 28), Date.UTC(1969, 11, 31, 23, 0)]) {
      writeIsoTimestamp(target, 0, ms);
      assert.equal(target.toString('latin1'), new Date(ms).toISOString());
    }
  });

  it('answers the lastSeen and stale it is given, in UTF-8, whatever the text was built with, and writes nothing past them', () => {
    const vm = {
      id: 'vm-1',
      role: 'worker',
      status: 'running',
      address: '10.0.0.1',
      registeredBy: 'agent',
      registeredAt: isoTimestamp(0),
    };
    const later = Date.UTC(2026, 10, 27, 12, 34, 56, 789);
    for (const parts of [
      vmJsonParts({ ...vm, name: 'größe ✓ 🚀', services: null, metadata: JSON.stringify({ note: 'naïve' }) }),
      vmJsonParts({ ...vm, name: 'ascii', services: '[{"name":"web","port":80,"protocol":"http"}]', metadata: null }),
    ]) {
      const text = vmJsonString(parts, Date.UTC(2026, 0, 1));
      for (const stale of [false, true]) {
        const size = vmJsonSize(text, stale);
        const target = Buffer.alloc(size + 2, '!');
        assert.equal(writeVmJson(target, 1, text, later, stale), size + 1);
        assert.equal(target.toString('utf8', 1, size + 1), vmJson(parts, later, stale));
        assert.equal(target.toString('latin1', size + 1), '!', 'nothing written after the answer');
        const parsed = JSON.parse(target.toString('utf8', 1, size + 1));
        assert.equal(parsed.lastSeen, '2026-11-27T12:34:56.789Z');
        assert.equal(parsed.stale, stale);
      }
    }
  });
});
