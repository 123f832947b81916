import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopback } from './config.js';

describe('which HOST counts as loopback (served without a token)', () => {
  it('127.0.0.0/8, ::1 in any spelling, and localhost', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LocalHost']) {
      assert.equal(isLoopback(host), true, host);
    }
  });

  it('not the wildcard addresses, other interfaces, or host names that may resolve anywhere', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'registry.internal', 'localhost.example.com']) {
      assert.equal(isLoopback(host), false, host);
    }
  });
});
