import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { testApp, type TestApp } from '../../testing/app.js';

describe('If-Match', () => {
  let h: TestApp;
  beforeEach(async () => (h = await testApp()));
  afterEach(() => h.close());

  it('PATCH with the current ETag succeeds; with a stale one answers 412 and changes nothing', async () => {
    await h.register();
    const current = await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' });
    const etag = String(current.headers.etag);
    const ok = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'n1' }, headers: { 'if-match': etag } });
    assert.equal(ok.status, 200);
    assert.notEqual(ok.headers.etag, etag);
    const late = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'n2' }, headers: { 'if-match': etag } });
    assert.equal(late.status, 412);
    const del = await h.request({ method: 'DELETE', url: '/registry/vms/abc-123-def', headers: { 'if-match': etag } });
    assert.equal(del.status, 412);
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body.name, 'n1');
  });

  it('a malformed If-Match is a 400 that says what it expects', async () => {
    await h.register();
    const response = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'x' }, headers: { 'if-match': 'abc' } });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /If-Match/);
  });
});
