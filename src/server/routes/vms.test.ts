import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { aRegistration } from '../../testing/fixtures.js';
import { testApp, type TestApp } from '../../testing/app.js';

const billing = aRegistration();

describe('the seed API', () => {
  let h: TestApp;
  beforeEach(async () => (h = await testApp()));
  afterEach(() => h.close());

  it('POST /registry/vms answers 201 with the full entry, status defaulting to running', async () => {
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload: billing });
    assert.equal(response.status, 201);
    assert.deepEqual(response.body, {
      ...billing,
      status: 'running',
      registeredAt: '2026-11-27T12:00:00.000Z',
      lastSeen: '2026-11-27T12:00:00.000Z',
      stale: false,
    });
    assert.match(String(response.headers.etag), /^"\d+"$/);
  });

  it('POST of an id already registered answers 409 and keeps the first entry', async () => {
    const first = await h.register();
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload: { ...billing, name: 'impostor' } });
    assert.equal(response.status, 409);
    assert.match(response.body.error, /abc-123-def.*already registered/);
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body, first);
  });

  it('GET /registry/vms lists {vms, count} newest first, with role and status filters alone and combined', async () => {
    await h.register({ id: 'lt-1' });
    h.clock.advance(1);
    await h.register({ id: 'infra-1', role: 'infra' });
    h.clock.advance(1);
    await h.register({ id: 'lt-2', status: 'paused' });
    const ids = async (query: string) => {
      const response = await h.request({ method: 'GET', url: `/registry/vms${query}` });
      assert.equal(response.status, 200);
      assert.equal(response.body.count, response.body.vms.length);
      return response.body.vms.map((vm: { id: string }) => vm.id);
    };
    assert.deepEqual(await ids(''), ['lt-2', 'infra-1', 'lt-1']);
    assert.deepEqual(await ids('?role=lieutenant'), ['lt-2', 'lt-1']);
    assert.deepEqual(await ids('?status=running'), ['infra-1', 'lt-1']);
    assert.deepEqual(await ids('?role=infra&status=running'), ['infra-1']);
    assert.deepEqual(await ids('?role=golden'), []);
  });

  it('list and discover carry the registry revision in X-Registry-Index and the list body', async () => {
    const vm = await h.register();
    const list = await h.request({ method: 'GET', url: '/registry/vms' });
    assert.equal(list.headers['x-registry-index'], String(list.body.revision));
    assert.ok(list.body.revision >= 1);
    const discover = await h.request({ method: 'GET', url: '/registry/discover/lieutenant' });
    assert.equal(discover.headers['x-registry-index'], String(list.body.revision));
    assert.deepEqual(discover.body.vms, [vm]);
  });

  it('GET /registry/vms/:id answers the entry, or 404 naming the id', async () => {
    const vm = await h.register();
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body, vm);
    const missing = await h.request({ method: 'GET', url: '/registry/vms/nobody' });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /"nobody" is not registered/);
  });

  it('PATCH changes the updatable fields given and nothing else', async () => {
    const vm = await h.register();
    h.clock.advance(60_000);
    const response = await h.request({
      method: 'PATCH',
      url: '/registry/vms/abc-123-def',
      payload: { status: 'paused', metadata: { reason: 'saving resources' } },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { ...vm, status: 'paused', metadata: { reason: 'saving resources' } });
    const renamed = await h.request({
      method: 'PATCH',
      url: '/registry/vms/abc-123-def',
      payload: { name: 'b2', address: 'b2.vm.vers.sh', services: [] },
    });
    assert.deepEqual(renamed.body, { ...response.body, name: 'b2', address: 'b2.vm.vers.sh', services: [] });
  });

  it('PATCH to running refreshes lastSeen; other PATCHes leave it', async () => {
    const vm = await h.register({ status: 'paused' });
    h.clock.advance(60_000);
    const paused = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'x' } });
    assert.equal(paused.body.lastSeen, vm.lastSeen);
    const running = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { status: 'running' } });
    assert.equal(running.body.lastSeen, '2026-11-27T12:01:00.000Z');
  });

  it('PATCH and heartbeat of an unknown id answer 404', async () => {
    assert.equal((await h.request({ method: 'PATCH', url: '/registry/vms/nobody', payload: { name: 'x' } })).status, 404);
    assert.equal((await h.request({ method: 'POST', url: '/registry/vms/nobody/heartbeat' })).status, 404);
    assert.equal((await h.request({ method: 'DELETE', url: '/registry/vms/nobody' })).status, 404);
  });

  it('DELETE answers {deleted: true, id} and the VM is gone', async () => {
    await h.register();
    const response = await h.request({ method: 'DELETE', url: '/registry/vms/abc-123-def' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { deleted: true, id: 'abc-123-def' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).status, 404);
  });

  it('heartbeat answers {id, lastSeen} and moves lastSeen', async () => {
    await h.register();
    h.clock.advance(120_000);
    const response = await h.request({ method: 'POST', url: '/registry/vms/abc-123-def/heartbeat' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { id: 'abc-123-def', lastSeen: '2026-11-27T12:02:00.000Z' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body.lastSeen, response.body.lastSeen);
  });

  it('discover answers running, non-stale VMs of the role, newest registration first', async () => {
    await h.register({ id: 'old-infra', role: 'infra' });
    h.clock.advance(1000);
    await h.register({ id: 'new-infra', role: 'infra' });
    await h.register({ id: 'paused-infra', role: 'infra', status: 'paused' });
    await h.register({ id: 'a-worker', role: 'worker' });
    const response = await h.request({ method: 'GET', url: '/registry/discover/infra' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.vms.map((vm: { id: string }) => vm.id), ['new-infra', 'old-infra']);
    assert.equal(response.body.count, 2);
  });
});

describe('PUT /registry/vms/:id', () => {
  let h: TestApp;
  beforeEach(async () => (h = await testApp()));
  afterEach(() => h.close());
  const { id: _id, ...body } = billing;

  it('answers 201 when it creates and 200 when it replaces, keeping registeredAt', async () => {
    const created = await h.request({ method: 'PUT', url: '/registry/vms/abc-123-def', payload: body });
    assert.equal(created.status, 201);
    h.clock.advance(5000);
    const replaced = await h.request({ method: 'PUT', url: '/registry/vms/abc-123-def', payload: { ...body, name: 'again' } });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.name, 'again');
    assert.equal(replaced.body.registeredAt, created.body.registeredAt);
    assert.equal(replaced.body.lastSeen, '2026-11-27T12:00:05.000Z');
  });

  it('refuses a body id that disagrees with the path', async () => {
    const response = await h.request({ method: 'PUT', url: '/registry/vms/abc-123-def', payload: { ...billing, id: 'other' } });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /does not match/);
  });
});
