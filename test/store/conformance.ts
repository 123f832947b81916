import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../src/domain/clock.js';
import { ConflictError, ForbiddenError, GoneError, NotFoundError, PreconditionFailedError } from '../../src/domain/errors.js';
import { staleAfterEvent } from '../../src/domain/stale-after-event.js';
import type { HealthTarget } from '../../src/domain/service-health.js';
import build from 'fast-json-stringify';
import { VmListSchema } from '../../src/domain/schemas/vm.js';
import { discoverFilter, DISCOVERABLE, listFilter, type ListFilter, type RegistryStore } from '../../src/store/store.js';
import { aVm, STALE_AFTER_MS } from '../../src/testing/fixtures.js';

export interface StoreFixture {
  store: RegistryStore;
  /** Moves the time the store reads; for PostgreSQL this shifts the database clock too. */
  advance(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** Opens an empty store whose clock starts now and stands still unless advanced. */
export type StoreFactory = (options: {
  staleAfterMs: number;
  clock: ManualClock;
  eventRetention: number;
  /** REGISTRY_HEALTH_CHECKS: off, as by default, except for the service health cases. */
  healthChecks: boolean;
}) => Promise<StoreFixture>;

export const EVENT_RETENTION = 50;

/**
 * The behaviour every RegistryStore must have. The SQLite and PostgreSQL stores run this
 * same suite unchanged; a store is correct when it passes.
 */
export function registryStoreConformance(name: string, open: StoreFactory): void {
  describe(`RegistryStore conformance: ${name}`, () => {
    let fixture: StoreFixture;
    let store: RegistryStore;
    let clock: ManualClock;
    const advance = (ms: number) => fixture.advance(ms);
    const ids = async (filter = {}) => (await store.list(filter)).vms.map((vm) => vm.id);

    beforeEach(async () => {
      clock = new ManualClock(Date.now());
      fixture = await open({ staleAfterMs: STALE_AFTER_MS, clock, eventRetention: EVENT_RETENTION, healthChecks: false });
      store = fixture.store;
    });
    afterEach(async () => fixture.cleanup());

    describe('register', () => {
      it('stores every field and stamps registeredAt and lastSeen with the same instant', async () => {
        const vm = await store.register(aVm());
        assert.deepEqual({ ...vm, registeredAt: undefined, lastSeen: undefined, revision: undefined }, {
          ...aVm(),
          stale: false,
          registeredAt: undefined,
          lastSeen: undefined,
          revision: undefined,
        });
        assert.equal(vm.registeredAt, vm.lastSeen);
        assert.ok(Math.abs(Date.parse(vm.registeredAt) - Date.now()) < 60_000);
        assert.deepEqual(await store.get('vm-1'), vm);
      });

      it("keeps each service's protocol, and leaves it absent where it was not given", async () => {
        const services = [{ name: 'api', port: 443, protocol: 'https', healthPath: '/health' }, { name: 'raw', port: 9000 }];
        const vm = await store.register(aVm({ services }));
        assert.deepEqual(vm.services, services);
        assert.deepEqual((await store.get('vm-1'))?.services, services);
        assert.deepEqual((await store.list()).vms[0].services, services);
      });

      it('leaves services and metadata absent when they were not given', async () => {
        const vm = await store.register(aVm({ services: undefined, metadata: undefined }));
        assert.equal('services' in vm, false);
        assert.equal('metadata' in vm, false);
        assert.deepEqual(await store.get('vm-1'), vm);
      });

      it('refuses an id that is already registered and keeps the first entry', async () => {
        const first = await store.register(aVm());
        await assert.rejects(store.register(aVm({ name: 'other' })), ConflictError);
        assert.deepEqual(await store.get('vm-1'), first);
      });

      it('keeps unicode and prototype-like metadata keys as plain data', async () => {
        const metadata = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1, "名前": "ü🚀"}');
        const vm = await store.register(aVm({ name: 'żółw 🐢', metadata }));
        const read = await store.get(vm.id);
        assert.equal(read?.name, 'żółw 🐢');
        assert.equal(JSON.stringify(read?.metadata), JSON.stringify(metadata));
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      });
    });

    describe('put', () => {
      it('creates an absent VM', async () => {
        const { vm, created } = await store.put(aVm());
        assert.equal(created, true);
        assert.deepEqual(await store.get('vm-1'), vm);
      });

      it('replaces every field of an existing VM, keeps registeredAt and refreshes lastSeen', async () => {
        const first = await store.register(aVm());
        await advance(10_000);
        const { vm, created } = await store.put(aVm({ name: 'renamed', services: undefined, status: 'paused' }));
        assert.equal(created, false);
        assert.equal(vm.name, 'renamed');
        assert.equal(vm.status, 'paused');
        assert.equal('services' in vm, false);
        assert.equal(vm.registeredAt, first.registeredAt);
        assert.equal(Date.parse(vm.lastSeen) - Date.parse(first.lastSeen), 10_000);
        assert.ok(vm.revision > first.revision);
      });

      it('honours a revision precondition', async () => {
        const first = await store.register(aVm());
        await assert.rejects(store.put(aVm({ name: 'x' }), { ifRevision: first.revision + 1 }), PreconditionFailedError);
        await assert.rejects(store.put(aVm({ id: 'absent' }), { ifRevision: 1 }), PreconditionFailedError);
        assert.equal((await store.get('vm-1'))?.name, 'billing-lt');
        assert.equal((await store.put(aVm({ name: 'y' }), { ifRevision: first.revision })).vm.name, 'y');
      });
    });

    describe('list', () => {
      it('orders newest registration first, then by id', async () => {
        await store.register(aVm({ id: 'old' }));
        await advance(1000);
        await store.register(aVm({ id: 'b' }));
        await store.register(aVm({ id: 'a' }));
        await advance(1000);
        await store.register(aVm({ id: 'new' }));
        assert.deepEqual(await ids(), ['new', 'a', 'b', 'old']);
      });

      it('filters by role, by status, and by both', async () => {
        await store.register(aVm({ id: 'lt-run' }));
        await store.register(aVm({ id: 'lt-paused', status: 'paused' }));
        await store.register(aVm({ id: 'infra-run', role: 'infra' }));
        await store.register(aVm({ id: 'w-stopped', role: 'worker', status: 'stopped' }));
        assert.deepEqual((await ids({ role: 'lieutenant' })).sort(), ['lt-paused', 'lt-run']);
        assert.deepEqual((await ids({ status: 'running' })).sort(), ['infra-run', 'lt-run']);
        assert.deepEqual(await ids({ role: 'worker', status: 'stopped' }), ['w-stopped']);
        assert.deepEqual(await ids({ role: 'golden' }), []);
      });

      it('answers the revision it reflects', async () => {
        const vm = await store.register(aVm());
        assert.equal((await store.list()).revision, vm.revision);
        assert.equal(await store.revision(), vm.revision);
      });
    });

    describe('staleness', () => {
      beforeEach(async () => {
        await store.register(aVm({ id: 'quiet' }));
        await store.register(aVm({ id: 'paused', status: 'paused' }));
        await advance(STALE_AFTER_MS);
        await store.register(aVm({ id: 'fresh' }));
      });

      it('is not stale at exactly the threshold', async () => {
        assert.deepEqual((await ids(listFilter({ status: 'running' }))).sort(), ['fresh', 'quiet']);
      });

      it('running without a heartbeat past the threshold is stale: left out of running and discover, kept in the full list', async () => {
        await advance(1);
        assert.deepEqual(await ids(listFilter({ status: 'running' })), ['fresh']);
        assert.deepEqual(await ids(discoverFilter('lieutenant')), ['fresh']);
        assert.deepEqual((await ids()).sort(), ['fresh', 'paused', 'quiet']);
        assert.deepEqual(await ids({ stale: true }), ['quiet']);
        assert.deepEqual((await ids({ stale: false })).sort(), ['fresh', 'paused']);
      });

      it('every answer says whether the VM is stale, judged when it answers', async () => {
        const staleness = async () => Object.fromEntries((await store.list()).vms.map((vm) => [vm.id, vm.stale]));
        assert.deepEqual(await staleness(), { fresh: false, paused: false, quiet: false }, 'at exactly the threshold');
        await advance(1);
        assert.deepEqual(await staleness(), { fresh: false, paused: false, quiet: true }, 'time alone turned it stale');
        assert.equal((await store.get('quiet'))?.stale, true);
        assert.equal((await store.get('paused'))?.stale, false, 'only a running VM is stale');
        assert.deepEqual((await store.list({ stale: true })).vms.map((vm) => vm.stale), [true]);
        assert.equal((await store.update('quiet', { name: 'renamed' })).stale, true, 'a change that is no sign of life leaves it stale');
        await store.heartbeat('quiet');
        assert.equal((await store.get('quiet'))?.stale, false);
        await advance(STALE_AFTER_MS + 1);
        assert.equal((await store.deregister('quiet')).stale, true, 'a removal answers the last state');
      });

      it('a heartbeat brings a stale VM back', async () => {
        await advance(1);
        await store.heartbeat('quiet');
        assert.deepEqual((await ids(discoverFilter('lieutenant'))).sort(), ['fresh', 'quiet']);
      });

      it('PATCH to running refreshes lastSeen; other changes do not make a dead VM look alive', async () => {
        await advance(1);
        await store.update('quiet', { metadata: { note: 'still quiet' } });
        assert.deepEqual(await ids(discoverFilter('lieutenant')), ['fresh']);
        await store.update('paused', { status: 'running' });
        assert.deepEqual((await ids(discoverFilter('lieutenant'))).sort(), ['fresh', 'paused']);
      });
    });

    describe('heartbeat', () => {
      it('moves lastSeen to now and nothing else, revision included', async () => {
        const vm = await store.register(aVm());
        await advance(30_000);
        const beat = await store.heartbeat('vm-1');
        assert.deepEqual(beat, { id: 'vm-1', lastSeen: new Date(Date.parse(vm.lastSeen) + 30_000).toISOString() });
        assert.deepEqual(await store.get('vm-1'), { ...vm, lastSeen: beat.lastSeen });
        assert.equal(await store.revision(), vm.revision);
      });

      it('fails for an unknown id', async () => {
        await assert.rejects(store.heartbeat('nobody'), NotFoundError);
      });

      it('keeps a cached listing over heartbeats of VMs it cannot show, and rebuilds every listing a heartbeat may change', async () => {
        const fresh = async (filter: ListFilter) => {
          const listing = await store.list(filter);
          return build(VmListSchema)({ ...listing, count: listing.vms.length });
        };
        await store.register(aVm({ id: 'i', role: 'infra' }));
        await store.register(aVm({ id: 'l', role: 'lieutenant' }));
        await store.register(aVm({ id: 'p', role: 'lieutenant', status: 'paused' }));
        await advance(STALE_AFTER_MS - 20_000);
        await store.register(aVm({ id: 'w', role: 'worker' }));
        // 'i', 'l' and 'p' were last seen just over STALE_AFTER_MS ago: 'i' and 'l' are stale by time, with no sweep to say so.
        await advance(20_001);
        const filters: ListFilter[] = [{ role: 'infra' }, discoverFilter('lieutenant'), { stale: true }, { status: 'paused' }, {}];
        const kept = async (beat: string, expected: ListFilter[]) => {
          const before = await Promise.all(filters.map(async (filter) => (await store.listJson(filter)).body));
          await store.heartbeat(beat);
          for (const [i, filter] of filters.entries()) {
            const key = JSON.stringify(filter);
            const body = (await store.listJson(filter)).body;
            assert.equal(body.toString(), await fresh(filter), `${key} after a heartbeat of ${beat}`);
            const keep = expected.includes(filter);
            assert.equal(body === before[i], keep, `${key} ${keep ? 'kept' : 'rebuilt'} after a heartbeat of ${beat}`);
          }
        };
        const [infra, lieutenants, stale, paused] = filters;
        await advance(1);
        await kept('w', [infra, lieutenants, paused]);
        await advance(1);
        // A stale lieutenant turning fresh joins the discovery of its role and leaves the stale listing.
        await kept('l', [infra, paused]);
        assert.deepEqual((await store.listJson(lieutenants)).ids, ['l']);
        await advance(1);
        await kept('p', [infra, lieutenants]);
        await advance(1);
        await kept('i', [lieutenants, paused]);
        assert.deepEqual((await store.listJson(stale)).ids, [], 'nothing is stale any more');
      });
    });

    describe('update', () => {
      it('changes only the fields given and takes a new revision', async () => {
        const vm = await store.register(aVm());
        await advance(1000);
        const updated = await store.update('vm-1', { status: 'paused', metadata: { reason: 'saving resources' } });
        assert.deepEqual(updated, {
          ...vm,
          status: 'paused',
          metadata: { reason: 'saving resources' },
          revision: updated.revision,
        });
        assert.ok(updated.revision > vm.revision);
        assert.deepEqual(await store.get('vm-1'), updated);
      });

      it('fails for an unknown id and on a revision mismatch, changing nothing', async () => {
        const vm = await store.register(aVm());
        await assert.rejects(store.update('nobody', { name: 'x' }), NotFoundError);
        await assert.rejects(store.update('vm-1', { name: 'x' }, { ifRevision: vm.revision + 5 }), PreconditionFailedError);
        assert.deepEqual(await store.get('vm-1'), vm);
        assert.equal(await store.revision(), vm.revision);
      });
    });

    describe('deregister', () => {
      it('removes the entry and answers its last state', async () => {
        const vm = await store.register(aVm());
        const removed = await store.deregister('vm-1');
        assert.deepEqual({ ...removed, revision: 0 }, { ...vm, revision: 0 });
        assert.ok(removed.revision > vm.revision);
        assert.equal(await store.get('vm-1'), undefined);
        assert.equal(await store.count(), 0);
      });

      it('fails for an unknown id and on a revision mismatch', async () => {
        const vm = await store.register(aVm());
        await assert.rejects(store.deregister('nobody'), NotFoundError);
        await assert.rejects(store.deregister('vm-1', { ifRevision: vm.revision + 1 }), PreconditionFailedError);
        assert.ok(await store.get('vm-1'));
      });
    });

    describe('event log', () => {
      const types = async (since = 0) => (await store.eventsSince(since)).map((e) => `${e.type}:${e.vm.id}`);

      it('records every change with its revision, time and the VM as it stood', async () => {
        const start = await store.revision();
        const registered = await store.register(aVm());
        await advance(1000);
        const updated = await store.update('vm-1', { status: 'paused' });
        await store.deregister('vm-1');
        const events = await store.eventsSince(start);
        assert.deepEqual(events.map((e) => [e.type, e.revision]), [
          ['registered', registered.revision],
          ['updated', updated.revision],
          ['deregistered', updated.revision + 1],
        ]);
        const { revision: _r, ...publicVm } = updated;
        assert.deepEqual(events[1].vm, publicVm);
        assert.deepEqual(events[2].vm, publicVm, 'a removal carries the last state');
        assert.equal(Date.parse(events[1].at) - Date.parse(events[0].at), 1000);
        assert.equal('revision' in events[0].vm, false);
      });

      it('put records registered when it creates and updated when it replaces', async () => {
        await store.put(aVm());
        await store.put(aVm({ name: 'again' }));
        assert.deepEqual(await types(), ['registered:vm-1', 'updated:vm-1']);
      });

      it('answers after a revision, at most limit events', async () => {
        for (let i = 0; i < 5; i++) await store.register(aVm({ id: `vm-${i}` }));
        const revision = await store.revision();
        const page = await store.eventsSince(revision - 4, 2);
        assert.deepEqual(page.map((e) => e.revision), [revision - 3, revision - 2]);
        assert.deepEqual(await store.eventsSince(revision), []);
      });

      it('refuses a revision older than it keeps, or ahead of the registry, as gone', async () => {
        for (let i = 0; i < EVENT_RETENTION + 20; i++) await store.register(aVm({ id: `vm-${i}` }));
        const revision = await store.revision();
        await assert.rejects(store.eventsSince(0), GoneError);
        await assert.rejects(store.eventsSince(revision + 1), GoneError);
        const kept = await store.eventsSince(revision - EVENT_RETENTION, 1000);
        assert.equal(kept.length, EVENT_RETENTION);
      });

      it('keeps every event of a commit larger than the retention until the next commit, so that a watcher current before it misses none', async () => {
        await store.register(aVm({ id: 'before' }));
        const before = await store.revision();
        const at = clock.now();
        const batch = Array.from({ length: EVENT_RETENTION + 10 }, (_, i) => ({ ...aVm({ id: `batch-${i}` }), registeredAt: at, lastSeen: at }));
        await store.import(batch);
        const events = await store.eventsSince(before, 1000);
        assert.deepEqual(events.map((e) => e.vm.id), batch.map((vm) => vm.id));

        await store.register(aVm({ id: 'after' }));
        await assert.rejects(store.eventsSince(before), GoneError, 'the next commit trims the log to the retention again');
        const revision = await store.revision();
        assert.equal((await store.eventsSince(revision - EVENT_RETENTION, 1000)).length, EVENT_RETENTION);
      });

      it('tells change listeners after commit, and not for a heartbeat', async () => {
        let calls = 0;
        const stop = store.onChange(() => calls++);
        await store.register(aVm());
        await store.heartbeat('vm-1');
        await store.register(aVm({ id: 'vm-2' }));
        await new Promise((resolve) => setTimeout(resolve, 200));
        stop();
        await store.register(aVm({ id: 'vm-3' }));
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.ok(calls >= 1 && calls <= 2, `called ${calls} times`);
      });
    });

    describe('sweep', () => {
      const types = async (since: number) => (await store.eventsSince(since)).map((e) => `${e.type}:${e.vm.id}`);

      it('announces a VM stale once, when it crosses the threshold', async () => {
        await store.register(aVm({ id: 'quiet' }));
        await store.register(aVm({ id: 'paused', status: 'paused' }));
        const start = await store.revision();
        await advance(STALE_AFTER_MS);
        assert.equal(await store.sweep(), 0);
        await advance(1);
        assert.equal(await store.sweep(), 1);
        assert.equal(await store.sweep(), 0);
        assert.deepEqual(await types(start), ['stale:quiet']);
      });

      it('the next heartbeat of a stale VM announces its recovery; ordinary heartbeats announce nothing', async () => {
        await store.register(aVm({ id: 'quiet' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        const start = await store.revision();
        await store.heartbeat('quiet');
        await store.heartbeat('quiet');
        assert.deepEqual(await types(start), ['recovered:quiet']);
        assert.equal((await store.get('quiet'))?.revision, start + 1);
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        assert.deepEqual(await types(start), ['recovered:quiet', 'stale:quiet'], 'stale again after recovering');
      });

      it('an update that leaves a stale VM stale does not announce it again', async () => {
        await store.register(aVm({ id: 'quiet' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        const start = await store.revision();
        await store.update('quiet', { metadata: { note: 'x' } });
        await store.sweep();
        assert.deepEqual(await types(start), ['updated:quiet']);
        await store.update('quiet', { status: 'running' });
        await store.heartbeat('quiet');
        assert.deepEqual(await types(start), ['updated:quiet', 'updated:quiet'], 'a PATCH to running is the recovery itself');
      });

      // The one rule (domain/stale-after-event.ts): an update keeps the announcement only while the
      // VM still runs and its lastSeen did not move. Watchers apply it to the event stream, so the
      // store must apply the very same rule, or a watcher would wait for a recovery never announced.
      it('an update to running in the same millisecond as the last heartbeat moves no lastSeen, so the VM stays announced stale', async () => {
        const registered = await store.register(aVm({ id: 'quiet' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        const [announced] = await store.eventsSince((await store.revision()) - 1);
        await advance(-(STALE_AFTER_MS + 1));
        const start = await store.revision();
        const updated = await store.update('quiet', { status: 'running' });
        assert.equal(updated.lastSeen, registered.lastSeen, 'the clock reads the instant of the last heartbeat');
        const [event] = await store.eventsSince(start);
        assert.equal(staleAfterEvent(event, announced.vm), true, 'a watcher keeps the stale mark');
        await store.heartbeat('quiet');
        assert.deepEqual(await types(start), ['updated:quiet', 'recovered:quiet'], 'so the next heartbeat announces the recovery');
      });

      it('an update to running with the clock stepped back behind the last heartbeat moves lastSeen back and ends the announcement', async () => {
        const registered = await store.register(aVm({ id: 'quiet' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        const [announced] = await store.eventsSince((await store.revision()) - 1);
        await advance(-(STALE_AFTER_MS + 2));
        const start = await store.revision();
        const updated = await store.update('quiet', { status: 'running' });
        assert.equal(Date.parse(updated.lastSeen), Date.parse(registered.lastSeen) - 1);
        const [event] = await store.eventsSince(start);
        assert.equal(staleAfterEvent(event, announced.vm), false, 'a watcher drops the stale mark');
        await store.heartbeat('quiet');
        assert.deepEqual(await types(start), ['updated:quiet'], 'the update was the recovery; the heartbeat announces nothing');
      });

      it('a rename with the clock stepped back leaves lastSeen where it was, so the VM stays announced stale', async () => {
        await store.register(aVm({ id: 'quiet' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        const [announced] = await store.eventsSince((await store.revision()) - 1);
        await advance(-(STALE_AFTER_MS + 2));
        const start = await store.revision();
        await store.update('quiet', { name: 'renamed' });
        const [event] = await store.eventsSince(start);
        assert.equal(staleAfterEvent(event, announced.vm), true);
        await store.heartbeat('quiet');
        assert.deepEqual(await types(start), ['updated:quiet', 'recovered:quiet']);
      });

      it("each event's VM is stale or not as of that event", async () => {
        const start = await store.revision();
        await store.register(aVm({ id: 'quiet' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep();
        await store.update('quiet', { metadata: { note: 'still quiet' } });
        await store.heartbeat('quiet');
        await store.update('quiet', { name: 'alive' });
        await advance(STALE_AFTER_MS + 1);
        await store.sweep({ reapAfterMs: 0 });
        await advance(1);
        await store.sweep({ reapAfterMs: 0 });
        const events = (await store.eventsSince(start)).map((e) => `${e.type}:${e.vm.stale}`);
        assert.deepEqual(events, ['registered:false', 'stale:true', 'updated:true', 'recovered:false', 'updated:false', 'stale:true', 'reaped:true']);
      });

      it('reaps VMs stale for longer than reapAfter, and only when asked to', async () => {
        await store.register(aVm({ id: 'dead' }));
        await store.register(aVm({ id: 'stopped', status: 'stopped' }));
        await advance(STALE_AFTER_MS + 1);
        await store.sweep({ reapAfterMs: 60_000 });
        const start = await store.revision();
        await advance(60_000 - 1);
        await store.sweep();
        assert.ok(await store.get('dead'), 'no reaping without reapAfterMs');
        await store.sweep({ reapAfterMs: 60_000 });
        assert.ok(await store.get('dead'), 'not yet: stale for exactly reapAfter');
        await advance(1);
        assert.equal(await store.sweep({ reapAfterMs: 60_000 }), 1);
        assert.equal(await store.get('dead'), undefined);
        assert.ok(await store.get('stopped'), 'a stopped VM is never stale, so never reaped');
        assert.deepEqual(await types(start), ['reaped:dead']);
      });

      it('sweeps at most limit VMs at a time', async () => {
        for (let i = 0; i < 5; i++) await store.register(aVm({ id: `vm-${i}` }));
        await advance(STALE_AFTER_MS + 1);
        assert.equal(await store.sweep({ limit: 3 }), 3);
        assert.equal(await store.sweep({ limit: 3 }), 2);
      });
    });

    describe('ownership', () => {
      it('remembers the token that registered a VM, and only that token may change it', async () => {
        const vm = await store.register(aVm({ owner: 'pool-a' }));
        assert.equal(vm.owner, 'pool-a');
        assert.equal((await store.get('vm-1'))?.owner, 'pool-a');
        await assert.rejects(store.update('vm-1', { name: 'x' }, { owner: 'pool-b' }), ForbiddenError);
        await assert.rejects(store.heartbeat('vm-1', { owner: 'pool-b' }), ForbiddenError);
        await assert.rejects(store.put(aVm({ name: 'x' }), { owner: 'pool-b' }), ForbiddenError);
        await assert.rejects(store.deregister('vm-1', { owner: 'pool-b' }), ForbiddenError);
        assert.deepEqual(await store.get('vm-1'), vm, 'refused changes change nothing');
        await store.heartbeat('vm-1', { owner: 'pool-a' });
        assert.equal((await store.update('vm-1', { name: 'mine' }, { owner: 'pool-a' })).name, 'mine');
        await assert.rejects(store.heartbeat('nobody', { owner: 'pool-a' }), NotFoundError);
      });

      it('a VM registered without a token belongs to no scoped token; a replacement keeps the owner', async () => {
        await store.register(aVm({ id: 'admins' }));
        await assert.rejects(store.update('admins', { name: 'x' }, { owner: 'pool-a' }), ForbiddenError);
        await store.register(aVm({ owner: 'pool-a' }));
        const { vm } = await store.put(aVm({ name: 'replaced by an admin' }));
        assert.equal(vm.owner, 'pool-a');
      });

      it('events never carry the owner', async () => {
        const start = await store.revision();
        await store.register(aVm({ owner: 'pool-a' }));
        const [event] = await store.eventsSince(start);
        assert.equal('owner' in event.vm, false);
      });
    });

    describe('service health', () => {
      const checked = { name: 'pi-rpc', port: 3001, healthPath: '/health' };
      const board = { name: 'board', port: 3002, healthPath: '/ready' };
      const target = (service = checked, address = 'vm-1.vm.vers.sh'): HealthTarget => ({ address, service });
      const failed = { status: 'critical' as const, checkedAt: '2026-11-27T12:00:00.000Z', output: 'HTTP 500' };
      const passed = { status: 'passing' as const, checkedAt: '2026-11-27T12:00:30.000Z', output: 'HTTP 200' };
      const statuses = async (id = 'vm-1') => (await store.get(id))?.services?.map((s) => s.health?.status);

      it('with checks off, services are stored exactly as sent, with no health', async () => {
        const vm = await store.register(aVm({ services: [checked] }));
        assert.deepEqual(vm.services, [checked]);
      });

      describe('with checks on', () => {
        beforeEach(async () => {
          await fixture.cleanup();
          fixture = await open({ staleAfterMs: STALE_AFTER_MS, clock, eventRetention: EVENT_RETENTION, healthChecks: true });
          store = fixture.store;
        });

        it('a service with a healthPath starts unknown; one without carries no health', async () => {
          const vm = await store.register(aVm({ services: [checked, { name: 'ssh', port: 22 }] }));
          assert.deepEqual(vm.services, [{ ...checked, health: { status: 'unknown' } }, { name: 'ssh', port: 22 }]);
          assert.deepEqual(await store.get('vm-1'), vm);
        });

        it('a change of status is an updated event with a new revision; the same status again writes nothing', async () => {
          const registered = await store.register(aVm({ services: [checked] }));
          const changed = await store.recordHealth('vm-1', target(), failed);
          assert.equal(changed?.revision, registered.revision + 1);
          assert.deepEqual(changed?.services, [{ ...checked, health: failed }]);
          assert.deepEqual(await store.get('vm-1'), changed);
          assert.equal(await store.recordHealth('vm-1', target(), { ...failed, checkedAt: passed.checkedAt }), undefined);
          assert.equal(await store.revision(), changed!.revision);
          const events = await store.eventsSince(registered.revision);
          assert.deepEqual(events.map((e) => [e.type, e.revision, e.vm.services?.[0].health?.status]), [['updated', changed!.revision, 'critical']]);
        });

        it('a verdict about a target the VM no longer has (moved, or service changed) writes nothing', async () => {
          await store.register(aVm({ services: [checked] }));
          const revision = await store.revision();
          assert.equal(await store.recordHealth('vm-1', target(checked, 'elsewhere.vm.vers.sh'), failed), undefined);
          assert.equal(await store.recordHealth('vm-1', target({ ...checked, port: 9 }), failed), undefined);
          assert.equal(await store.recordHealth('nobody', target(), failed), undefined);
          assert.equal(await store.revision(), revision);
          assert.deepEqual(await statuses(), ['unknown']);
        });

        it('health carries over a PUT or PATCH at the same address, and starts unknown again when the address or the target changes', async () => {
          await store.register(aVm({ services: [checked, board] }));
          await store.recordHealth('vm-1', target(), failed);
          await store.recordHealth('vm-1', target(board), passed);
          await store.put(aVm({ name: 'renamed', services: [checked, board] }));
          assert.deepEqual(await statuses(), ['critical', 'passing']);
          await store.update('vm-1', { metadata: { again: true } });
          assert.deepEqual(await statuses(), ['critical', 'passing']);
          await store.update('vm-1', { services: [checked, { ...board, healthPath: '/other' }] });
          assert.deepEqual(await statuses(), ['critical', 'unknown']);
          await store.update('vm-1', { address: 'moved.vm.vers.sh' });
          assert.deepEqual(await statuses(), ['unknown', 'unknown']);
        });

        it('filters by the worst state of a VM, or of the named service alone', async () => {
          await store.register(aVm({ id: 'healthy', services: [checked, board] }));
          await store.register(aVm({ id: 'half', services: [checked, board] }));
          await store.register(aVm({ id: 'new', services: [checked] }));
          await store.register(aVm({ id: 'unchecked', services: [{ name: 'ssh', port: 22 }] }));
          for (const service of [checked, board]) await store.recordHealth('healthy', { address: 'healthy.vm.vers.sh', service }, passed);
          await store.recordHealth('half', { address: 'half.vm.vers.sh', service: checked }, passed);
          await store.recordHealth('half', { address: 'half.vm.vers.sh', service: board }, failed);
          const sorted = async (filter: object) => (await ids(filter)).sort();
          assert.deepEqual(await sorted({ health: ['passing'] }), ['healthy', 'unchecked']);
          assert.deepEqual(await sorted({ health: ['critical'] }), ['half']);
          assert.deepEqual(await sorted({ health: ['unknown'] }), ['new']);
          assert.deepEqual(await sorted({ service: 'pi-rpc' }), ['half', 'healthy', 'new']);
          assert.deepEqual(await sorted({ service: 'pi-rpc', health: ['passing'] }), ['half', 'healthy']);
          assert.deepEqual(await sorted(discoverFilter('lieutenant', { health: DISCOVERABLE })), ['healthy', 'new', 'unchecked']);
          assert.deepEqual(await sorted(discoverFilter('lieutenant', { health: DISCOVERABLE, service: 'board' })), ['healthy']);
        });
      });
    });

    describe('revisions', () => {
      it('every change takes the next revision, strictly increasing with none skipped', async () => {
        const revisions: number[] = [];
        revisions.push((await store.register(aVm({ id: 'a' }))).revision);
        revisions.push((await store.put(aVm({ id: 'b' }))).vm.revision);
        revisions.push((await store.put(aVm({ id: 'b', name: 'b2' }))).vm.revision);
        revisions.push((await store.update('a', { name: 'a2' })).revision);
        revisions.push((await store.deregister('b')).revision);
        const first = revisions[0];
        assert.deepEqual(revisions, [first, first + 1, first + 2, first + 3, first + 4]);
      });

      it('changes sent together: a refused one changes nothing and takes no revision, the others all commit', async () => {
        const [first, duplicate, missing, second] = await Promise.allSettled([
          store.register(aVm({ id: 'a' })),
          store.register(aVm({ id: 'a', name: 'duplicate' })),
          store.update('nobody', { name: 'x' }),
          store.register(aVm({ id: 'b' })),
        ]);
        assert.equal(first.status, 'fulfilled');
        assert.ok(duplicate.status === 'rejected' && duplicate.reason instanceof ConflictError);
        assert.ok(missing.status === 'rejected' && missing.reason instanceof NotFoundError);
        assert.equal(second.status, 'fulfilled');
        const revisions = [first, second].map((r) => (r as PromiseFulfilledResult<{ revision: number }>).value.revision);
        assert.equal(revisions[1], revisions[0] + 1);
        assert.equal((await store.get('a'))?.name, 'billing-lt');
        assert.deepEqual((await store.eventsSince(revisions[0] - 1)).map((e) => `${e.type}:${e.vm.id}`), ['registered:a', 'registered:b']);
      });

      it('concurrent writers never share a revision', async () => {
        const written = await Promise.all(
          Array.from({ length: 40 }, (_, i) => store.register(aVm({ id: `vm-${i}` }))),
        );
        const revisions = written.map((vm) => vm.revision).sort((a, b) => a - b);
        assert.equal(new Set(revisions).size, 40);
        assert.equal(revisions[39] - revisions[0], 39);
      });
    });
  });
}
