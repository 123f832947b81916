import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Role } from '../src/domain/schemas/vm.js';
import { aRegistration } from '../src/testing/fixtures.js';
import { json } from './support/http.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';
import { Watcher } from './support/watch.js';

const dir = tempDir();
after(() => dir.remove());

const vm = (id: string, role: Role = 'worker') => aRegistration({ id, role });
const ids = (body: { vms: { id: string }[] }) => body.vms.map((entry) => entry.id);

describe('blocking queries and filtered watchers on a real server', () => {
  let server: ServerProcess;
  before(async () => (server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } })));
  after(async () => server.stop());
  const api = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
  const revisionOf = (response: Response) => Number(/\d+/.exec(response.headers.get('etag')!)![0]);
  const indexOf = (response: Response) => Number(response.headers.get('x-registry-index'));
  const metric = async (name: string) => {
    const text = await (await api('/metrics')).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  const health = async () => (await api('/health')).json() as Promise<{ revision: number; waiting: number }>;
  /** Polls until the server's change feed has handed out `revision`: every wake-up it causes has happened. */
  const delivered = async (revision: number) => {
    while ((await health()).revision < revision) await sleep(10);
  };
  const waiting = async (count: number) => {
    while ((await health()).waiting !== count) await sleep(10);
  };
  /** A request whose settling the test can look at without awaiting it. */
  const pending = (path: string) => {
    const state: { settled: boolean; response: Promise<Response> } = { settled: false, response: api(path) };
    state.response.finally(() => (state.settled = true)).catch(() => undefined);
    return state;
  };

  it('a blocking discover for infra sleeps through 200 worker changes and wakes on an infra registration, with it in the answer', async () => {
    const first = await api('/registry/discover/infra');
    const index = indexOf(first);
    const woken = await metric('vm_registry_blocking_wakeups_total');
    const blocked = pending(`/registry/discover/infra?index=${index}&wait=60s`);
    await waiting(1);

    for (let i = 0; i < 50; i++) {
      const id = `sleep-worker-${i}`;
      await api('/registry/vms', json('POST', vm(id)));
      await api(`/registry/vms/${id}`, json('PATCH', { status: 'paused' }));
      await api(`/registry/vms/${id}`, json('PUT', { ...vm(id), name: 'renamed' }));
      await api(`/registry/vms/${id}`, { method: 'DELETE' });
    }
    await delivered(index + 200);
    assert.equal((await health()).revision, index + 200, 'two hundred changes, all to workers');
    assert.equal(blocked.settled, false, 'no worker change woke it');
    assert.equal(await metric('vm_registry_blocking_wakeups_total'), woken);

    const infra = await api('/registry/vms', json('POST', vm('sleep-infra', 'infra')));
    const answer = await blocked.response;
    assert.equal(answer.status, 200);
    assert.deepEqual(ids(await answer.json()), ['sleep-infra'], 'it answered on the infra change, before its 60 s wait was over');
    assert.equal(indexOf(answer), revisionOf(infra), 'X-Registry-Index: the revision the answer is current as of');
    assert.equal(await metric('vm_registry_blocking_wakeups_total'), woken + 1);
    assert.equal(await metric('vm_registry_blocking_wakeups_unchanged_total'), 0);
  });

  it('a blocking discover wakes when a matching VM leaves its result: stopped, moved to another role, deregistered', async () => {
    for (const id of ['leave-stop', 'leave-move', 'leave-delete']) await api('/registry/vms', json('POST', vm(id, 'lieutenant')));
    const leavings: [string, () => Promise<Response>][] = [
      ['leave-stop', () => api('/registry/vms/leave-stop', json('PATCH', { status: 'stopped' }))],
      ['leave-move', () => api('/registry/vms/leave-move', json('PUT', vm('leave-move', 'worker')))],
      ['leave-delete', () => api('/registry/vms/leave-delete', { method: 'DELETE' })],
    ];
    let index = indexOf(await api('/registry/discover/lieutenant'));
    for (const [id, leave] of leavings) {
      const blocked = pending(`/registry/discover/lieutenant?index=${index}&wait=60s`);
      await waiting(1);
      const unrelated = revisionOf(await api(`/registry/vms/${id}-bystander`, json('PUT', vm(`${id}-bystander`, 'worker'))));
      await delivered(unrelated);
      assert.equal(blocked.settled, false, `a worker's change did not wake the query before ${id} left`);
      await leave();
      const answer = await blocked.response;
      const body = await answer.json();
      assert.ok(!ids(body).includes(id), `${id} left the answer`);
      assert.ok(indexOf(answer) > unrelated);
      index = indexOf(answer);
    }
    assert.equal(await metric('vm_registry_blocking_wakeups_unchanged_total'), 0);
  });

  it('a role watcher sees a VM leave its role, and nothing of VMs that never were in it', async () => {
    await api('/registry/vms', json('POST', vm('mover', 'lieutenant')));
    const watcher = await Watcher.open(`${server.url}/registry/events?role=lieutenant`);
    await api('/registry/vms', json('POST', vm('never-a-lieutenant', 'worker')));
    await api('/registry/vms/mover', json('PUT', vm('mover', 'worker')));
    await api('/registry/vms/mover', json('PATCH', { status: 'paused' }));
    await api('/registry/vms', json('POST', vm('newcomer', 'lieutenant')));
    await watcher.until((events) => events.some((event) => event.data.vm.id === 'newcomer'));
    await watcher.close();
    assert.deepEqual(
      watcher.events.map((event) => [event.event, event.data.vm.id, event.data.vm.role]),
      [
        ['updated', 'mover', 'worker'],
        ['registered', 'newcomer', 'lieutenant'],
      ],
      'the move out of the role is sent; the worker\'s own changes afterwards are not',
    );
  });

  it('a role watcher resuming from before a VM left its role is sent the leaving', async () => {
    await api('/registry/vms', json('POST', vm('resumed-mover', 'infra')));
    const since = indexOf(await api('/registry/vms'));
    await api('/registry/vms/resumed-mover', json('PUT', vm('resumed-mover', 'worker')));
    const marker = await api('/registry/vms', json('POST', vm('resumed-marker', 'infra')));
    await delivered(revisionOf(marker));
    const watcher = await Watcher.open(`${server.url}/registry/events?role=infra&since=${since}`);
    await watcher.until((events) => events.some((event) => event.data.vm.id === 'resumed-marker'));
    await watcher.close();
    assert.deepEqual(
      watcher.events.map((event) => [event.event, event.data.vm.id]),
      [
        ['updated', 'resumed-mover'],
        ['registered', 'resumed-marker'],
      ],
    );
  });
});

describe('after a restart, the first change to a VM that was already there is judged against what it was', () => {
  const file = join(dir.path, 'restarted.db');
  let server: ServerProcess;
  before(async () => {
    const first = await startServer({ env: { REGISTRY_DB: file } });
    for (const id of ['known-same', 'known-renamed', 'known-unserviced']) {
      assert.equal((await fetch(`${first.url}/registry/vms`, json('POST', vm(id, 'lieutenant')))).status, 201);
    }
    await first.stop();
    server = await startServer({ env: { REGISTRY_DB: file } });
  });
  after(async () => server.stop());
  const api = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
  const indexOf = (response: Response) => Number(response.headers.get('x-registry-index'));
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await api('/metrics')).text())?.[1]);

  it('a change that shows nothing new wakes nobody; one that renames a VM, or takes away the service a query asks for, wakes it', async () => {
    const index = indexOf(await api('/registry/discover/lieutenant'));
    const byService = api(`/registry/vms?service=pi-rpc&index=${index}&wait=60s`);
    const byRole = api(`/registry/discover/lieutenant?index=${index}&wait=60s`);
    while ((await (await api('/health')).json()).waiting !== 2) await sleep(10);

    // Running already: only lastSeen moves, which is no news to a blocking query.
    assert.equal((await api('/registry/vms/known-same', json('PATCH', { status: 'running' }))).status, 200);
    const renamed = await api('/registry/vms/known-renamed', json('PUT', { ...vm('known-renamed', 'lieutenant'), name: 'renamed' }));
    assert.equal(renamed.status, 200);
    const byRoleAnswer = await byRole;
    assert.equal(indexOf(byRoleAnswer), index + 2, 'woken by the rename, the second change, not by the first');
    assert.deepEqual(ids(await byRoleAnswer.json()).sort(), ['known-renamed', 'known-same', 'known-unserviced']);

    assert.equal(indexOf(await byService), index + 2, 'the rename woke the query by service as well');
    const again = api(`/registry/vms?service=pi-rpc&index=${index + 2}&wait=60s`);
    while ((await (await api('/health')).json()).waiting !== 1) await sleep(10);
    const { services: _dropped, ...unserviced } = vm('known-unserviced', 'lieutenant');
    assert.equal((await api('/registry/vms/known-unserviced', json('PUT', unserviced))).status, 200);
    const byServiceAnswer = await again;
    assert.deepEqual(ids(await byServiceAnswer.json()).sort(), ['known-renamed', 'known-same'], 'the VM without the service left the answer');
    assert.equal(await metric('vm_registry_blocking_wakeups_unchanged_total'), 0, 'no wake-up found nothing new');
  });
});

describe('after a restart, a change to a VM whose JSON nothing had read since is judged against what the VM was', () => {
  const file = join(dir.path, 'unread.db');
  let server: ServerProcess;
  before(async () => {
    const first = await startServer({ env: { REGISTRY_DB: file } });
    for (const [id, role] of [['unread-unserviced', 'worker'], ['unread-same', 'lieutenant'], ['unread-renamed', 'lieutenant']] as const) {
      assert.equal((await fetch(`${first.url}/registry/vms`, json('POST', vm(id, role)))).status, 201);
    }
    await first.stop();
    server = await startServer({ env: { REGISTRY_DB: file } });
  });
  after(async () => server.stop());
  const api = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
  const revisionOf = (response: Response) => Number(/\d+/.exec(response.headers.get('etag')!)![0]);
  const health = async () => (await api('/health')).json() as Promise<{ revision: number; waiting: number }>;
  /** Once the feed has handed out `revision`, every query that change woke has stopped waiting. */
  const waitingAfter = async (revision: number) => {
    while ((await health()).revision < revision) await sleep(10);
    return (await health()).waiting;
  };
  const waiting = async (count: number) => {
    while ((await health()).waiting !== count) await sleep(10);
  };
  const blocked = (path: string) => {
    const response = api(path);
    response.catch(() => undefined);
    return response;
  };

  // Each query waits from a revision taken from /health, not from a listing: a listing would
  // build the JSON of the VMs it lists, and these VMs' JSON must first be needed by the change.
  it('a worker that drops the service a query asks for wakes it', async () => {
    const query = blocked(`/registry/vms?role=worker&service=pi-rpc&index=${(await health()).revision}&wait=60s`);
    await waiting(1);
    const { services: _dropped, ...unserviced } = vm('unread-unserviced', 'worker');
    const change = await api('/registry/vms/unread-unserviced', json('PUT', unserviced));
    assert.equal(change.status, 200);
    assert.equal(await waitingAfter(revisionOf(change)), 0, 'the VM left the answer: the query woke');
    assert.deepEqual(ids(await (await query).json()), []);
  });

  it('a lieutenant renamed wakes a blocking discover; one that only moves lastSeen does not', async () => {
    const query = blocked(`/registry/discover/lieutenant?index=${(await health()).revision}&wait=60s`);
    await waiting(1);
    const same = await api('/registry/vms/unread-same', json('PATCH', { status: 'running' }));
    assert.equal(await waitingAfter(revisionOf(same)), 1, 'nothing a listing shows changed: still waiting');
    const renamed = await api('/registry/vms/unread-renamed', json('PATCH', { name: 'renamed' }));
    assert.equal(await waitingAfter(revisionOf(renamed)), 0, 'the rename woke it');
    const answer = (await (await query).json()) as { vms: { id: string; name: string }[] };
    assert.deepEqual(answer.vms.map(({ id, name }) => [id, name]).sort(), [
      ['unread-renamed', 'renamed'],
      ['unread-same', 'billing-lt'],
    ]);
  });
});
