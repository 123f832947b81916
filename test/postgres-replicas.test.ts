import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Role } from '../src/domain/schemas/vm.js';
import { aRegistration } from '../src/testing/fixtures.js';
import { json } from './support/http.js';
import { startPostgres, type PostgresCluster } from './support/postgres.js';
import { runCli, startServer, type ServerProcess } from './support/server-process.js';
import { Watcher } from './support/watch.js';
import { RegistryClient, type WatchItem } from '../src/client/index.js';

let cluster: PostgresCluster;
before(async () => (cluster = await startPostgres()));
after(() => cluster?.destroy());

const vm = (id: string, role: Role = 'worker') => aRegistration({ id, role });
const index = async (server: ServerProcess) => Number((await fetch(`${server.url}/registry/vms`)).headers.get('x-registry-index'));

/** Two `vm-registry serve` processes on one fresh database, stopped by the caller's after hook. */
async function startReplicas(database: string, env: Record<string, string> = {}): Promise<ServerProcess[]> {
  const url = await cluster.createDatabase(database);
  return Promise.all([0, 1].map(() => startServer({ env: { DATABASE_URL: url, ...env } })));
}
/** Polls until `check` holds, failing after 10 s with `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await sleep(20);
  }
}
const stopAll = (servers: ServerProcess[] | undefined) => Promise.all((servers ?? []).map((server) => server.stop()));

describe('two replicas on one PostgreSQL database', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let servers: ServerProcess[];
  before(async () => ([a, b] = servers = await startReplicas('replicas')));
  after(async () => {
    for (const code of await stopAll(servers)) assert.equal(code, 0, 'a graceful stop closes the pool and LISTEN cleanly');
  });

  it('both report the postgres store as healthy', async () => {
    for (const server of [a, b]) {
      const health = await (await fetch(`${server.url}/health`)).json();
      assert.equal(health.status, 'ok');
      assert.deepEqual(health.store, { kind: 'postgres', ok: true });
    }
  });

  it('a write on one replica is readable on the other with its revision in X-Registry-Min-Index, preconditions included', async () => {
    const atRevisionOf = (answer: Response) => ({ headers: { 'x-registry-min-index': JSON.parse(answer.headers.get('etag')!) } });
    const created = await fetch(`${a.url}/registry/vms`, json('POST', vm('shared-1')));
    assert.equal(created.status, 201);
    const onB = await fetch(`${b.url}/registry/vms/shared-1`, atRevisionOf(created));
    assert.deepEqual(await onB.json(), await created.json());
    assert.equal(onB.headers.get('etag'), created.headers.get('etag'));

    const patched = await fetch(`${b.url}/registry/vms/shared-1`, json('PATCH', { status: 'paused' }, { 'if-match': onB.headers.get('etag')! }));
    assert.equal(patched.status, 200);
    const stale = await fetch(`${a.url}/registry/vms/shared-1`, json('PATCH', { name: 'x' }, { 'if-match': created.headers.get('etag')! }));
    assert.equal(stale.status, 412, 'the ETag from replica a is outdated by the change on b');
    assert.equal((await (await fetch(`${a.url}/registry/vms/shared-1`, atRevisionOf(patched))).json()).status, 'paused');

    assert.equal((await fetch(`${b.url}/registry/vms/shared-1`, { method: 'DELETE' })).status, 200);
    const afterDelete = await index(b);
    assert.equal((await fetch(`${a.url}/registry/vms/shared-1`, { headers: { 'x-registry-min-index': String(afterDelete) } })).status, 404);
  });

  it('watchers on both replicas see every event from both, in revision order, none skipped', async () => {
    const start = await index(a);
    const watchers = await Promise.all([a, b].map((server) => Watcher.open(`${server.url}/registry/events?since=${start}`)));
    const WRITERS = 4;
    const ROUNDS = 15;
    await Promise.all(
      [a, b].flatMap((server, s) =>
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let i = 0; i < ROUNDS; i++) {
            const id = `conc-${s}-${w}-${i}`;
            assert.equal((await fetch(`${server.url}/registry/vms`, json('POST', vm(id)))).status, 201);
            // The update goes through the other replica, so each VM's two events cross replicas.
            const other = server === a ? b : a;
            assert.equal((await fetch(`${other.url}/registry/vms/${id}`, json('PATCH', { metadata: { i } }))).status, 200);
          }
        }),
      ),
    );
    const total = 2 * WRITERS * ROUNDS * 2;
    const expected = Array.from({ length: total }, (_, i) => start + 1 + i);
    const [onA, onB] = await Promise.all(watchers.map((watcher) => watcher.until((events) => events.length >= total, 15_000)));
    await Promise.all(watchers.map((watcher) => watcher.close()));
    assert.deepEqual(onA.map((e) => e.id), expected);
    assert.deepEqual(onB.map((e) => e.id), expected);
    assert.deepEqual(onB.map((e) => `${e.event}:${e.data.vm.id}`), onA.map((e) => `${e.event}:${e.data.vm.id}`));
  });

  it('a blocking discover on one replica sleeps through the other\'s changes to other roles and wakes on one to its own', async () => {
    const since = await index(b);
    const blocked = fetch(`${b.url}/registry/discover/infra?index=${since}&wait=60s`);
    await eventually(async () => (await (await fetch(`${b.url}/health`)).json()).waiting === 1, 'the blocking query waits');
    const worker = await fetch(`${a.url}/registry/vms`, json('POST', vm('replica-worker', 'worker')));
    const workerRevision = Number(/\d+/.exec(worker.headers.get('etag')!)![0]);
    await eventually(async () => (await (await fetch(`${b.url}/health`)).json()).revision >= workerRevision, 'b has read the worker change');
    assert.equal((await (await fetch(`${b.url}/health`)).json()).waiting, 1, 'the worker change woke nothing');
    const wakeups = /^vm_registry_blocking_wakeups_total (\d+)$/m.exec(await (await fetch(`${b.url}/metrics`)).text())?.[1];
    assert.equal(wakeups, '0', 'not even to find that the answer was the same');
    await fetch(`${a.url}/registry/vms`, json('POST', vm('blocking-1', 'infra')));
    const answer = await blocked;
    assert.ok(Number(answer.headers.get('x-registry-index')) > workerRevision);
    assert.deepEqual((await answer.json()).vms.map((v: { id: string }) => v.id), ['blocking-1'], 'answered on the infra change, before its wait was over');
  });

  it('a role watcher on one replica sees a VM the other moves out of the role leave it', async () => {
    const registered = await fetch(`${a.url}/registry/vms`, json('POST', vm('replica-mover', 'lieutenant')));
    const watcher = await Watcher.open(`${b.url}/registry/events?role=lieutenant&since=${/\d+/.exec(registered.headers.get('etag')!)![0]}`);
    await fetch(`${a.url}/registry/vms/replica-mover`, json('PUT', vm('replica-mover', 'worker')));
    const [moved] = await watcher.until((events) => events.length > 0);
    await watcher.close();
    assert.deepEqual([moved.event, moved.data.vm.id, moved.data.vm.role], ['updated', 'replica-mover', 'worker']);
  });
});

describe('the sweeper across replicas', () => {
  let servers: ServerProcess[];
  after(() => stopAll(servers));

  it('announces stale exactly once, and another replica takes over when the sweeping one is killed', async () => {
    const [a, b] = (servers = await startReplicas('sweeper', { REGISTRY_STALE_AFTER: '1s' }));
    const watcher = await Watcher.open(`${b.url}/registry/events?id=mortal`);
    await fetch(`${a.url}/registry/vms`, json('POST', vm('mortal')));
    await watcher.until((events) => events.some((e) => e.event === 'stale'), 5000);

    await a.kill();
    assert.equal((await fetch(`${b.url}/registry/vms/mortal/heartbeat`, { method: 'POST' })).status, 200);
    await watcher.until((events) => events.some((e) => e.event === 'recovered'));
    const recovered = Date.now();
    await watcher.until((events) => events.filter((e) => e.event === 'stale').length === 2, 5000);
    assert.ok(Date.now() - recovered < 3500, 'the surviving replica announced it within about a second of the threshold');
    // Both replicas swept while both lived; give any duplicate time to show up.
    await sleep(1500);
    await watcher.close();
    assert.deepEqual(watcher.events.map((e) => e.event), ['registered', 'stale', 'recovered', 'stale']);
  });
});

describe('a database outage', () => {
  let servers: ServerProcess[];
  after(() => stopAll(servers));

  it('answers 503 with a clear error while the database is down, stays up, and recovers by itself; watchers resume', async () => {
    const [a, b] = (servers = await startReplicas('outage'));
    await fetch(`${a.url}/registry/vms`, json('POST', vm('before-outage')));
    const watchers = await Promise.all([a, b].map((server) => Watcher.open(`${server.url}/registry/events?id=after-outage`)));

    cluster.stop();
    try {
      for (const server of [a, b]) {
        const read = await fetch(`${server.url}/registry/vms/before-outage`);
        assert.equal(read.status, 503);
        assert.match((await read.json()).error, /PostgreSQL database is unavailable.*retry/);
        const write = await fetch(`${server.url}/registry/vms`, json('POST', vm('during-outage')));
        assert.equal(write.status, 503);
        const beat = await fetch(`${server.url}/registry/vms/before-outage/heartbeat`, { method: 'POST' });
        assert.equal(beat.status, 503);
        const health = await fetch(`${server.url}/health`);
        assert.equal(health.status, 503);
        assert.equal((await health.json()).store.ok, false);
      }
      await sleep(500);
      for (const server of [a, b]) assert.equal(server.child.exitCode, null, 'the process stays up');
    } finally {
      cluster.start();
    }

    for (const server of [a, b]) {
      const deadline = Date.now() + 15_000;
      while ((await fetch(`${server.url}/health`)).status !== 200) {
        assert.ok(Date.now() < deadline, 'recovered within 15 s');
        await sleep(200);
      }
      assert.equal((await fetch(`${server.url}/registry/vms/before-outage`)).status, 200);
    }
    assert.equal((await fetch(`${b.url}/registry/vms`, json('POST', vm('after-outage')))).status, 201);
    await Promise.all(watchers.map((watcher) => watcher.until((events) => events.length === 1, 10_000)));
    await Promise.all(watchers.map((watcher) => watcher.close()));
    for (const watcher of watchers) assert.deepEqual(watcher.events.map((e) => e.data.vm.id), ['after-outage']);
  });
});

describe('a replica whose feed fell behind by more than the event log keeps', () => {
  let servers: ServerProcess[] | undefined;
  const stopWatching = new AbortController();
  after(() => {
    stopWatching.abort();
    return stopAll(servers);
  });

  it('resynchronises: its watchers, filtered or not, get a reset to re-list from, its blocking queries wake, /health moves on, and later changes flow', async () => {
    const [a, b] = (servers = await startReplicas('behind', { REGISTRY_EVENT_RETENTION: '20' }));
    const start = await index(b);
    const all = await Watcher.open(`${b.url}/registry/events`);
    const infra = await Watcher.open(`${b.url}/registry/events?role=infra`);
    const sdk = new RegistryClient({ url: b.url });
    const items: WatchItem[] = [];
    const watching = (async () => {
      for await (const item of sdk.watch({ since: start, signal: stopWatching.signal })) items.push(item);
    })();
    const blocked = fetch(`${b.url}/registry/vms?index=${start}&wait=60s`);
    await eventually(async () => (await (await fetch(`${b.url}/health`)).json()).waiting === 1, 'the blocking query waits');

    // Frozen, replica b reads nothing while a writes 30 changes, one commit each, past a log of 20.
    b.child.kill('SIGSTOP');
    try {
      for (let i = 0; i < 30; i++) assert.equal((await fetch(`${a.url}/registry/vms`, json('POST', vm(`burst-${i}`)))).status, 201);
    } finally {
      b.child.kill('SIGCONT');
    }

    const answer = await blocked;
    assert.equal(Number(answer.headers.get('x-registry-index')), start + 30, 'the blocking query woke with the fresh listing');
    assert.equal((await answer.json()).count, 30);
    for (const watcher of [all, infra]) {
      const [reset] = await watcher.until((events) => events.some((e) => e.event === 'reset'), 10_000);
      assert.deepEqual(reset.data, { type: 'reset', revision: start + 30 });
      assert.equal(watcher.events.length, 1, 'the reset comes instead of the changes the log no longer holds');
    }
    assert.equal((await (await fetch(`${b.url}/health`)).json()).revision, start + 30);
    await eventually(async () => items.length > 0, 'the SDK watch re-lists');
    assert.equal(items[0].type, 'resync');

    await fetch(`${a.url}/registry/vms`, json('POST', vm('after-reset', 'infra')));
    for (const watcher of [all, infra]) {
      const events = await watcher.until((e) => e.some((x) => x.data.vm?.id === 'after-reset'), 10_000);
      assert.deepEqual(events.map((e) => e.event), ['reset', 'registered']);
      assert.equal(events[1].id, start + 31);
    }
    await eventually(async () => (await (await fetch(`${b.url}/health`)).json()).revision === start + 31, '/health follows');

    await eventually(async () => items.some((item) => item.type === 'registered' && item.vm.id === 'after-reset'), 'the SDK watch carries on');
    stopWatching.abort();
    await watching;
    assert.deepEqual(items.map((item) => item.type), ['resync', 'registered'], 'the SDK re-lists at the reset and carries on');
    const [resync] = items;
    assert.ok(resync.type === 'resync');
    assert.equal(resync.revision, start + 30);
    assert.deepEqual(resync.vms.map((v) => v.id).sort(), Array.from({ length: 30 }, (_, i) => `burst-${i}`).sort());
    await Promise.all([all.close(), infra.close()]);
  });
});

describe('starting against PostgreSQL', () => {
  it('refuses to start when the database cannot be reached, saying which one and why, without the password', async () => {
    const { code, stdout, stderr } = await runCli(['serve'], {
      env: { PORT: '0', DATABASE_URL: `postgres://postgres:hunter2@127.0.0.1:1/registry` },
    });
    assert.equal(code, 1);
    const output = stdout + stderr;
    assert.match(output, /cannot open the PostgreSQL database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/registry: .*ECONNREFUSED/);
    assert.doesNotMatch(output, /hunter2/);
  });

  it('refuses a DATABASE_URL that is not a postgres URL as a usage error', async () => {
    const { code, stderr } = await runCli(['serve'], { env: { PORT: '0', DATABASE_URL: 'mysql://localhost/registry' } });
    assert.equal(code, 2);
    assert.match(stderr, /DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
  });
});

describe('health checks shared by two replicas', () => {
  it('each VM is checked by exactly one live replica; when one is killed, the other takes its share within an interval', async () => {
    const INTERVAL_MS = 500;
    const checks = new Map<string, number>();
    const target = createServer((request, response) => {
      checks.set(request.url!, (checks.get(request.url!) ?? 0) + 1);
      response.end('ok');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const port = (target.address() as AddressInfo).port;
    const servers = await startReplicas('health_shares', {
      REGISTRY_HEALTH_CHECKS: 'on',
      REGISTRY_HEALTH_INTERVAL: `${INTERVAL_MS}ms`,
      REGISTRY_HEALTH_TIMEOUT: '200ms',
      REGISTRY_HEALTH_HOSTS: '127.0.0.1',
    });
    const [a, b] = servers;
    try {
      const ids = Array.from({ length: 24 }, (_, i) => `checked-${i}`);
      for (const id of ids) {
        const body = { ...vm(id), address: '127.0.0.1', services: [{ name: 'pi-rpc', port, healthPath: `/health/${id}` }] };
        assert.equal((await fetch(`${a.url}/registry/vms`, json('POST', body))).status, 201);
      }
      /** Checks of each VM during `rounds` intervals. */
      const countOver = async (rounds: number) => {
        checks.clear();
        await sleep(rounds * INTERVAL_MS);
        return ids.map((id) => checks.get(`/health/${id}`) ?? 0);
      };
      // Both replicas settle on half the shards each within a few rounds.
      await sleep(6 * INTERVAL_MS);
      const shared = await countOver(8);
      // One checker: once a round, 8 or 9 in 8 rounds, give or take an edge; two would make about 16.
      for (const [i, n] of shared.entries()) assert.ok(n >= 6 && n <= 10, `${ids[i]} was checked ${n} times in 8 intervals`);
      const checkedBy = async (server: ServerProcess) =>
        Number(/vm_registry_health_checks_total\{result="pass"\} (\d+)/.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0);
      assert.ok((await checkedBy(a)) > 0 && (await checkedBy(b)) > 0, 'both replicas take a share');

      await a.kill();
      await sleep(2 * INTERVAL_MS);
      const alone = await countOver(8);
      for (const [i, n] of alone.entries()) assert.ok(n >= 6 && n <= 10, `${ids[i]} was checked ${n} times in 8 intervals after the kill`);
      const health = (await (await fetch(`${b.url}/registry/vms`)).json()).vms.map((v: { services: Array<{ health: { status: string } }> }) => v.services[0].health.status);
      assert.deepEqual(new Set(health), new Set(['passing']));
    } finally {
      await stopAll([b]);
      await stopAll([a]);
      target.close();
    }
  });
});
