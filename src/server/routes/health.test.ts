import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testApp } from '../../testing/app.js';
import { STALE_AFTER_MS } from '../../testing/fixtures.js';

describe('GET /health', () => {
  it('answers ok with uptime and the store state, even with auth on', async () => {
    const h = await testApp({ authToken: 'secret' });
    h.clock.advance(2500);
    const response = await h.request({ method: 'GET', url: '/health' });
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'ok');
    assert.equal(response.body.uptime, 2.5);
    assert.deepEqual(response.body.store, { kind: 'sqlite', ok: true });
    assert.equal(response.body.staleAfterMs, STALE_AFTER_MS);
  });

  it('says degraded with 503 when the store does not answer', async () => {
    const h = await testApp();
    await h.store.close();
    const response = await h.request({ method: 'GET', url: '/health' });
    assert.equal(response.status, 503);
    assert.equal(response.body.status, 'degraded');
    assert.equal(response.body.store.ok, false);
  });
});
