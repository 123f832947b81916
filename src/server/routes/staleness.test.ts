import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { testApp, type TestApp } from '../../testing/app.js';
import { STALE_AFTER_MS } from '../../testing/fixtures.js';

describe('staleness', () => {
  let h: TestApp;
  beforeEach(async () => {
    h = await testApp();
    await h.register({ id: 'quiet', role: 'infra' });
    await h.register({ id: 'beating', role: 'infra' });
  });
  afterEach(() => h.close());
  const ids = async (url: string) => (await h.request({ method: 'GET', url })).body.vms.map((vm: { id: string }) => vm.id).sort();

  it('a VM with no heartbeat for longer than REGISTRY_STALE_AFTER drops out of discover and ?status=running only', async () => {
    h.clock.advance(STALE_AFTER_MS - 1000);
    await h.request({ method: 'POST', url: '/registry/vms/beating/heartbeat' });
    assert.deepEqual(await ids('/registry/discover/infra'), ['beating', 'quiet']);
    h.clock.advance(1001);
    assert.deepEqual(await ids('/registry/discover/infra'), ['beating']);
    assert.deepEqual(await ids('/registry/vms?status=running'), ['beating']);
    assert.deepEqual(await ids('/registry/vms'), ['beating', 'quiet']);
    assert.deepEqual(await ids('/registry/vms?role=infra'), ['beating', 'quiet']);
  });

  it('every VM answer says whether it is stale, judged when it answers', async () => {
    const staleness = async (url: string) =>
      Object.fromEntries((await h.request({ method: 'GET', url })).body.vms.map((vm: { id: string; stale: boolean }) => [vm.id, vm.stale]));
    await h.register({ id: 'paused', role: 'infra', status: 'paused' });
    assert.deepEqual(await staleness('/registry/vms'), { beating: false, paused: false, quiet: false });
    h.clock.advance(STALE_AFTER_MS - 1000);
    await h.request({ method: 'POST', url: '/registry/vms/beating/heartbeat' });
    assert.deepEqual(await staleness('/registry/vms'), { beating: false, paused: false, quiet: false }, 'the same listing again');
    h.clock.advance(1001);
    assert.deepEqual(await staleness('/registry/vms'), { beating: false, paused: false, quiet: true }, 'time alone turned quiet stale');
    assert.deepEqual(await staleness('/registry/vms?role=infra&stale=true'), { quiet: true });
    assert.deepEqual(await staleness('/registry/discover/infra'), { beating: false });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/quiet' })).body.stale, true);
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/paused' })).body.stale, false, 'only a running VM can be stale');
    const patched = await h.request({ method: 'PATCH', url: '/registry/vms/quiet', payload: { name: 'still quiet' } });
    assert.equal(patched.body.stale, true);
    await h.request({ method: 'POST', url: '/registry/vms/quiet/heartbeat' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/quiet' })).body.stale, false);
  });

  it('its next heartbeat makes it discoverable again', async () => {
    h.clock.advance(STALE_AFTER_MS + 1);
    await h.request({ method: 'POST', url: '/registry/vms/quiet/heartbeat' });
    assert.deepEqual(await ids('/registry/discover/infra'), ['quiet']);
  });
});

describe('?stale on list', () => {
  it('true: only stale VMs; false: none; anything else is a 400', async () => {
    const h = await testApp();
    await h.register({ id: 'quiet' });
    h.clock.advance(STALE_AFTER_MS + 1);
    await h.register({ id: 'fresh' });
    await h.register({ id: 'paused', status: 'paused' });
    const ids = async (query: string) =>
      (await h.request({ method: 'GET', url: `/registry/vms${query}` })).body.vms.map((vm: { id: string }) => vm.id).sort();
    assert.deepEqual(await ids('?stale=true'), ['quiet']);
    assert.deepEqual(await ids('?stale=false'), ['fresh', 'paused']);
    assert.deepEqual(await ids('?status=running&stale=true'), ['quiet'], 'an explicit stale overrides the running rule');
    const bad = await h.request({ method: 'GET', url: '/registry/vms?stale=maybe' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^query parameter stale must be one of true, false/);
    await h.close();
  });
});
