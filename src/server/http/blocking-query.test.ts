import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Role, Status } from '../../domain/schemas/vm.js';
import { testApp, type TestApp } from '../../testing/app.js';
import { aRegistration, STALE_AFTER_MS } from '../../testing/fixtures.js';

/** The model of a VM: what the filters and the compared answers look at. */
interface ModelVm {
  role: Role;
  status: Status;
  name: string;
  lastSeen: number;
}

interface View {
  url: string;
  selects(vm: ModelVm, stale: boolean): boolean;
}

const VIEWS: View[] = [
  { url: '/registry/discover/infra', selects: (vm, stale) => vm.role === 'infra' && vm.status === 'running' && !stale },
  { url: '/registry/vms?role=worker', selects: (vm) => vm.role === 'worker' },
  { url: '/registry/vms?status=running', selects: (vm, stale) => vm.status === 'running' && !stale },
  { url: '/registry/vms?stale=true', selects: (_vm, stale) => stale },
  { url: '/registry/vms', selects: () => true },
];

type Step =
  | { kind: 'put'; id: string; role: Role; status: Status }
  | { kind: 'patch'; id: string; status?: Status; name?: string }
  | { kind: 'delete'; id: string }
  | { kind: 'heartbeat'; id: string }
  | { kind: 'silence' };

const id = fc.constantFrom('a', 'b', 'c', 'd');
const role = fc.constantFrom<Role>('infra', 'worker', 'lieutenant');
const status = fc.constantFrom<Status>('running', 'paused', 'stopped');
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), id, role, status }),
  fc.record({ kind: fc.constant('patch' as const), id, status }),
  fc.record({ kind: fc.constant('patch' as const), id, name: fc.constantFrom('x', 'y') }),
  fc.record({ kind: fc.constant('delete' as const), id }),
  fc.record({ kind: fc.constant('heartbeat' as const), id }),
  fc.constant({ kind: 'silence' as const }),
);

/** What a client compares between answers: each VM's fields a step can change, lastSeen aside (heartbeats move it without a change). */
const contentOf = (body: { vms: { id: string; role: string; status: string; name: string; stale: boolean }[] }) =>
  body.vms.map(({ id, role, status, name, stale }) => ({ id, role, status, name, stale })).sort((x, y) => x.id.localeCompare(y.id));

/**
 * Drives one registry through `steps` while a client holds a blocking query on `view`, and
 * checks each step against a model of the registry: a step that changes the view wakes the
 * query exactly once, with the view as the model has it (so different from the client's last
 * answer); a step that does not wakes nothing.
 */
async function followView(view: View, steps: Step[]): Promise<void> {
  const h: TestApp = await testApp();
  const model = new Map<string, ModelVm>();
  const staleOf = (vm: ModelVm) => vm.status === 'running' && h.clock.now() - vm.lastSeen > STALE_AFTER_MS;
  const expected = () =>
    [...model]
      .filter(([, vm]) => view.selects(vm, staleOf(vm)))
      .map(([id, vm]) => ({ id, role: vm.role, status: vm.status, name: vm.name, stale: staleOf(vm) }))
      .sort((x, y) => x.id.localeCompare(y.id));
  const metric = async (name: string) => {
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  /** Until the feed has handed out every committed change, and what they woke has been counted. */
  const settle = async () => {
    const revision = await h.store.revision();
    while ((await h.request({ method: 'GET', url: '/health' })).body.revision < revision) await new Promise(setImmediate);
    await new Promise(setImmediate);
  };
  const ask = (index: number) => h.request({ method: 'GET', url: `${view.url}${view.url.includes('?') ? '&' : '?'}index=${index}&wait=10m` });

  let blocked: ReturnType<typeof ask> | undefined;
  try {
    const first = await h.request({ method: 'GET', url: view.url });
    let seen = contentOf(first.body);
    blocked = ask(Number(first.headers['x-registry-index']));
    for (const change of steps) {
      const current = change.kind === 'silence' ? undefined : model.get(change.id);
      const before = expected();
      const woken = await metric('vm_registry_blocking_wakeups_total');
      switch (change.kind) {
        case 'put':
          await h.request({ method: 'PUT', url: `/registry/vms/${change.id}`, payload: aRegistration({ id: change.id, role: change.role, status: change.status, name: 'x' }) });
          model.set(change.id, { role: change.role, status: change.status, name: 'x', lastSeen: h.clock.now() });
          break;
        case 'patch':
          if (!current) continue;
          await h.request({ method: 'PATCH', url: `/registry/vms/${change.id}`, payload: change.status ? { status: change.status } : { name: change.name } });
          model.set(change.id, {
            ...current,
            ...(change.status && { status: change.status }),
            ...(change.name && { name: change.name }),
            ...(change.status === 'running' && { lastSeen: h.clock.now() }),
          });
          break;
        case 'delete':
          if (!current) continue;
          await h.request({ method: 'DELETE', url: `/registry/vms/${change.id}` });
          model.delete(change.id);
          break;
        case 'heartbeat':
          if (!current) continue;
          await h.request({ method: 'POST', url: `/registry/vms/${change.id}/heartbeat` });
          model.set(change.id, { ...current, lastSeen: h.clock.now() });
          break;
        case 'silence':
          h.clock.advance(STALE_AFTER_MS + 1);
          await h.store.sweep();
          break;
      }
      await settle();
      const after = expected();
      const wakes = (await metric('vm_registry_blocking_wakeups_total')) - woken;
      if (JSON.stringify(after) === JSON.stringify(before)) {
        assert.equal(wakes, 0, `${JSON.stringify(change)} leaves ${view.url} as it was, yet woke it`);
        continue;
      }
      assert.equal(wakes, 1, `${JSON.stringify(change)} changes ${view.url}: it wakes the query once`);
      const answer = await blocked;
      const content = contentOf(answer.body);
      assert.deepEqual(content, after, 'the woken answer is the view as it now is');
      assert.notDeepEqual(content, seen, 'and so differs from the last one the client saw');
      seen = content;
      blocked = ask(Number(answer.headers['x-registry-index']));
    }
    assert.equal(await metric('vm_registry_blocking_wakeups_unchanged_total'), 0);
  } finally {
    await h.close();
    await blocked?.catch(() => undefined);
  }
}

describe('blocking queries over random change sequences', () => {
  it('wake exactly when the answer changes, for every filter: no relevant change missed, no woken answer the same as the last', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...VIEWS), fc.array(step, { minLength: 1, maxLength: 25 }), followView),
      { numRuns: 30 },
    );
  });
});

describe('a blocking discover filtered by health', () => {
  it('wakes when a service it counts turns critical, and not when another role\'s service does', async () => {
    const h = await testApp();
    try {
      const checked = (id: string, role: Role) =>
        h.register({ id, role, services: [{ name: 'api', port: 8080, healthPath: '/healthz' }] });
      const target = (id: string) => ({ address: `${id}.vm.vers.sh`, service: { name: 'api', port: 8080, healthPath: '/healthz' } });
      await checked('infra-api', 'infra');
      await checked('worker-api', 'worker');
      const first = await h.request({ method: 'GET', url: '/registry/discover/infra?health=unknown' });
      assert.deepEqual(first.body.vms.map((vm: { id: string }) => vm.id), ['infra-api'], 'not checked yet: unknown');
      const blocked = h.request({ method: 'GET', url: `/registry/discover/infra?health=unknown&index=${first.headers['x-registry-index']}&wait=10m` });
      let answered = false;
      void blocked.then(() => (answered = true));

      const elsewhere = await h.store.recordHealth('worker-api', target('worker-api'), { status: 'critical' });
      while ((await h.request({ method: 'GET', url: '/health' })).body.revision < elsewhere!.revision) await new Promise(setImmediate);
      await new Promise(setImmediate);
      assert.equal(answered, false, 'a worker turning critical is not news to an infra query');

      await h.store.recordHealth('infra-api', target('infra-api'), { status: 'critical' });
      const answer = await blocked;
      assert.deepEqual(answer.body.vms, [], 'the infra VM left the answer');
    } finally {
      await h.close();
    }
  });
});
