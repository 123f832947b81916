import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  RegistryClient,
  RegistryConfigError,
  RegistryError,
  RegistryUnreachableError,
  type KeepAliveStateChange,
  type Registration,
  type RegistryEvent,
  type WatchItem,
} from '../src/client/index.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const dir = tempDir();
const vm = (id: string, extra: Partial<Registration> = {}): Registration => ({
  id,
  name: `name-${id}`,
  role: 'worker',
  address: `${id}.vm.vers.sh`,
  registeredBy: 'client-test',
  ...extra,
});

/** Polls until the condition holds; the keeper and the watcher run in the background. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A server on the same port and database as before, as after a crash and a restart. */
const restart = (port: number, db: string) => startServer({ env: { REGISTRY_DB: db, PORT: String(port) } });

describe('RegistryClient against a real server', () => {
  let server: ServerProcess;
  let client: RegistryClient;
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'methods.db') } });
    client = new RegistryClient({ url: server.url });
  });
  after(async () => {
    await server.stop();
  });

  it('has a typed method for every endpoint', async () => {
    const created = await client.register(vm('m-1', { services: [{ name: 'pi-rpc', port: 3001 }] }));
    assert.equal(created.status, 'running');
    assert.deepEqual(created.services, [{ name: 'pi-rpc', port: 3001 }]);

    const replaced = await client.put(vm('m-1', { name: 'renamed' }));
    assert.equal(replaced.created, false);
    assert.equal(replaced.vm.name, 'renamed');
    assert.equal(replaced.vm.registeredAt, created.registeredAt, 'PUT keeps registeredAt');
    const fresh = await client.put(vm('m-2', { role: 'infra' }));
    assert.equal(fresh.created, true);

    const listing = await client.list({ role: 'worker' });
    assert.deepEqual(listing.vms.map((v) => v.id), ['m-1']);
    assert.equal(listing.count, 1);
    assert.equal(listing.revision, fresh.revision, 'the list reflects the latest revision');

    const { vm: current, revision } = await client.getVersioned('m-1');
    assert.equal(current.name, 'renamed');
    assert.equal(revision, replaced.revision);
    await assert.rejects(client.update('m-1', { status: 'paused' }, { ifMatch: revision - 1 }), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.statusCode, 412);
      assert.match(error.message, /not \d+ as If-Match required/);
      return true;
    });
    const paused = await client.update('m-1', { status: 'paused' }, { ifMatch: revision });
    assert.equal(paused.status, 'paused');

    const beat = await client.heartbeat('m-2');
    assert.equal(beat.id, 'm-2');
    assert.ok(Date.parse(beat.lastSeen) >= Date.parse(fresh.vm.lastSeen));
    assert.deepEqual((await client.discover('infra')).vms.map((v) => v.id), ['m-2']);
    assert.deepEqual((await client.discover('worker')).vms, [], 'a paused VM is not discovered');

    assert.deepEqual(await client.deregister('m-1'), { deleted: true, id: 'm-1' });
    await assert.rejects(client.get('m-1'), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.statusCode, 404);
      assert.equal(error.message, 'VM "m-1" is not registered');
      return true;
    });
  });

  it('blocking queries wait for the next change, past the client timeout', async () => {
    const patient = new RegistryClient({ url: server.url, timeout: 300 });
    const { revision } = await patient.discover('golden');
    const started = Date.now();
    const answer = patient.discover('golden', { index: revision, wait: '10s' });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await client.register(vm('blocking-golden', { role: 'golden' }));
    const changed = await answer;
    assert.ok(Date.now() - started >= 600, 'it waited for the change, beyond its 300 ms timeout');
    assert.ok(changed.revision > revision);
    assert.deepEqual(changed.vms.map((v) => v.id), ['blocking-golden']);
    const unchanged = await patient.list({ role: 'golden', index: changed.revision, wait: 400 });
    assert.equal(unchanged.revision, changed.revision, 'no change: the same answer when the wait is over');
  });

  it('discoverChanges yields the answer, then each changed one: not timeouts, not other roles\' changes', async () => {
    const stop = new AbortController();
    const seen: string[][] = [];
    const following = (async () => {
      for await (const answer of client.discoverChanges('custom', { wait: '300ms', signal: stop.signal })) seen.push(answer.vms.map((v) => v.id));
    })();
    await until(() => seen.length === 1, 'the first answer');
    await client.register(vm('changes-worker'));
    await new Promise((resolve) => setTimeout(resolve, 700));
    await client.register(vm('changes-custom', { role: 'custom' }));
    await until(() => seen.length === 2, 'the registration');
    await client.deregister('changes-custom');
    await until(() => seen.length === 3, 'the deregistration');
    stop.abort();
    await following;
    assert.deepEqual(seen, [[], ['changes-custom'], []], 'two waits ran out and a worker registered in between, none of which was yielded');
  });

  it('carries the server message of a rejected request', async () => {
    await assert.rejects(client.register(vm('m-3', { services: [{ name: 'x', port: 70000 }] })), {
      name: 'RegistryError',
      statusCode: 400,
      message: 'services[0].port must be at most 65535',
    });
    await client.register(vm('m-3'));
    await assert.rejects(client.register(vm('m-3')), { statusCode: 409 });
  });

  it('reports configuration and connection problems as their own errors', async () => {
    const saved = process.env.VERS_INFRA_URL;
    delete process.env.VERS_INFRA_URL;
    try {
      assert.throws(() => new RegistryClient(), RegistryConfigError);
      process.env.VERS_INFRA_URL = server.url.replace('http://', '');
      assert.equal(new RegistryClient().url, server.url, 'the URL comes from VERS_INFRA_URL; http:// is implied');
    } finally {
      if (saved === undefined) delete process.env.VERS_INFRA_URL;
      else process.env.VERS_INFRA_URL = saved;
    }
    const nowhere = new RegistryClient({ url: 'http://127.0.0.1:1' });
    await assert.rejects(nowhere.list(), RegistryUnreachableError);
  });
});

describe('RegistryClient with authentication', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'auth.db'), VERS_AUTH_TOKEN: 'secret-token', HOST: '127.0.0.1' } });
  });
  after(async () => {
    await server.stop();
  });

  it('sends the token from the options or VERS_AUTH_TOKEN', async () => {
    await assert.rejects(new RegistryClient({ url: server.url, token: 'wrong' }).list(), { statusCode: 401 });
    assert.equal((await new RegistryClient({ url: server.url, token: 'secret-token' }).list()).count, 0);
    const saved = process.env.VERS_AUTH_TOKEN;
    process.env.VERS_AUTH_TOKEN = 'secret-token';
    try {
      assert.equal((await new RegistryClient({ url: server.url }).list()).count, 0);
    } finally {
      if (saved === undefined) delete process.env.VERS_AUTH_TOKEN;
      else process.env.VERS_AUTH_TOKEN = saved;
    }
  });
});

describe('keepAlive', () => {
  it('survives a registry restart and registers again after a 404', async () => {
    const db = join(dir.path, 'keepalive.db');
    let server = await startServer({ env: { REGISTRY_DB: db } });
    const port = server.port;
    const client = new RegistryClient({ url: server.url, timeout: 2000 });
    const changes: KeepAliveStateChange[] = [];
    const keeper = client.keepAlive(vm('ka-1'), {
      interval: 100,
      backoff: { min: 50, max: 100 },
      stopOnAbort: true,
      onStateChange: (change) => changes.push(change),
    });
    try {
      await until(() => keeper.state === 'alive', 'registered');
      const registeredAt = (await client.get('ka-1')).registeredAt;

      await server.kill();
      await until(() => keeper.state === 'retrying', 'the keeper notices the registry is gone');
      const failure = changes.find((change) => change.state === 'retrying')!.error;
      assert.ok(failure instanceof RegistryUnreachableError, 'retrying carries the failure');

      server = await restart(port, db);
      const restartedAt = Date.now();
      await until(() => keeper.state === 'alive', 'heartbeats resume');
      await until(async () => Date.parse((await client.get('ka-1')).lastSeen) >= restartedAt, 'lastSeen moves after the restart');
      assert.equal((await client.get('ka-1')).registeredAt, registeredAt, 'the same registration, not a new one');

      // The registry loses the entry (deleted by hand, or reaped): the next heartbeat gets 404.
      const before = changes.length;
      await client.deregister('ka-1');
      await until(() => changes.slice(before).some((change) => change.state === 'registering'), 'the keeper registers again');
      await until(() => keeper.state === 'alive', 'alive again');
      const again = await client.get('ka-1');
      assert.ok(Date.parse(again.registeredAt) > Date.parse(registeredAt), 'registered anew');

      await keeper.stop();
      assert.equal(keeper.state, 'stopped');
      assert.equal((await client.get('ka-1')).status, 'stopped', 'stopOnAbort marks the VM stopped');
      assert.deepEqual((await client.discover('worker')).vms, []);
    } finally {
      await keeper.stop();
      await server.stop();
    }
  });

  it('ends with the error when the registration itself is refused', async () => {
    const server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'refused.db') } });
    try {
      const keeper = new RegistryClient({ url: server.url }).keepAlive(vm('bad id with spaces'), { interval: 100 });
      await assert.rejects(keeper.done, { statusCode: 400 });
      assert.equal(keeper.state, 'stopped');
    } finally {
      await server.stop();
    }
  });
});

describe('watch', () => {
  it('resumes across a server restart without losing or repeating events', async () => {
    const db = join(dir.path, 'watch.db');
    let server = await startServer({ env: { REGISTRY_DB: db } });
    const port = server.port;
    const client = new RegistryClient({ url: server.url, timeout: 2000 });
    await client.register(vm('before-watch'));
    const abort = new AbortController();
    const seen: WatchItem[] = [];
    const watching = (async () => {
      for await (const item of client.watch({ signal: abort.signal, backoff: { min: 50, max: 200 } })) seen.push(item);
    })();
    try {
      // The watch starts from the current revision: the earlier registration is not replayed.
      await until(async () => {
        await client.put(vm('probe'));
        return seen.length > 0;
      }, 'the watch is connected');
      await client.register(vm('w-1'));
      await client.update('w-1', { status: 'paused' });
      await until(() => seen.some((item) => item.type === 'updated' && item.vm.id === 'w-1'), 'events before the restart arrive');

      await server.kill();
      server = await restart(port, db);
      // Written before the watcher has reconnected, so it must come from the log, not live.
      await client.deregister('w-1');
      await client.register(vm('w-2'));
      await until(() => seen.some((item) => item.type === 'registered' && item.vm.id === 'w-2'), 'events after the restart arrive');
    } finally {
      abort.abort();
      await watching;
      await server.stop();
    }

    const events = seen.filter((item): item is RegistryEvent => item.type !== 'resync');
    assert.equal(events.length, seen.length, 'the log still held everything: no resync');
    const revisions = events.map((event) => event.revision);
    assert.ok(!events.some((event) => event.vm.id === 'before-watch'));
    assert.deepEqual(revisions, [...new Set(revisions)], 'no event is repeated');
    const first = revisions[0];
    assert.deepEqual(revisions, revisions.map((_, i) => first + i), 'no revision is skipped');
    const tail = events.slice(-4).map((event) => `${event.type} ${event.vm.id}`);
    assert.deepEqual(tail, ['registered w-1', 'updated w-1', 'deregistered w-1', 'registered w-2']);
  });

  it('re-lists when the revision has left the event log (410), then carries on', async () => {
    const server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'gone.db'), REGISTRY_EVENT_RETENTION: '2' } });
    const client = new RegistryClient({ url: server.url });
    const abort = new AbortController();
    try {
      for (const id of ['g-1', 'g-2', 'g-3', 'g-4']) await client.register(vm(id));
      await assert.rejects(client.events({ since: 0 }), { statusCode: 410 });

      const items = client.watch({ since: 0, signal: abort.signal });
      const first = (await items.next()).value as WatchItem;
      assert.ok(first.type === 'resync', 'a resync comes first');
      assert.equal(first.revision, 4);
      assert.deepEqual(first.vms.map((v) => v.id), ['g-4', 'g-3', 'g-2', 'g-1']);

      await client.register(vm('g-5'));
      const next = (await items.next()).value as WatchItem;
      assert.ok(next.type === 'registered', 'then events continue');
      assert.deepEqual([next.revision, next.vm.id], [5, 'g-5']);
      abort.abort();
      assert.equal((await items.next()).done, true, 'aborting ends the iteration');
    } finally {
      abort.abort();
      await server.stop();
    }
  });

  it('filters by role and id', async () => {
    const server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'filter.db') } });
    const client = new RegistryClient({ url: server.url });
    try {
      const stream = await client.events({ since: 0, role: 'infra' });
      await client.register(vm('f-worker'));
      await client.register(vm('f-infra', { role: 'infra' }));
      for await (const event of stream) {
        assert.equal(event.type, 'registered');
        assert.equal(event.vm.id, 'f-infra', 'the worker is filtered out');
        break;
      }
    } finally {
      await server.stop();
    }
  });
});

describe('staleness and protocols through the SDK', () => {
  it('every VM carries stale, as do the events that turned it stale and back; services keep their protocol', async () => {
    const server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'stale.db'), REGISTRY_STALE_AFTER: '1s' } });
    const client = new RegistryClient({ url: server.url });
    try {
      const services = [{ name: 'api', port: 8443, protocol: 'https' }];
      const created = await client.register(vm('s-quiet', { services }));
      assert.deepEqual(created.services, services);
      const stream = await client.events({ since: (await client.list()).revision, id: 's-quiet' });
      const events = stream[Symbol.asyncIterator]();
      const next = async () => {
        const { value } = await events.next();
        return `${value.type}:${value.vm.stale}`;
      };
      assert.equal(await next(), 'stale:true', 'the sweeper announces it');
      assert.equal((await client.get('s-quiet')).stale, true);
      assert.deepEqual((await client.list({ stale: true })).vms.map((v) => [v.id, v.stale]), [['s-quiet', true]]);
      assert.deepEqual((await client.discover('worker')).vms, [], 'discover leaves it out');
      await client.heartbeat('s-quiet');
      assert.equal(await next(), 'recovered:false');
      assert.equal((await client.get('s-quiet')).stale, false);
      stream.close();
    } finally {
      await server.stop();
    }
  });
});

after(() => dir.remove());
