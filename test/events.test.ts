import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';
import { Watcher } from './support/watch.js';

const dir = tempDir();
after(() => dir.remove());
let databases = 0;
const freshDb = () => join(dir.path, `registry-${databases++}.db`);

const vm = (id: string, role = 'worker') => ({ id, name: id, role, address: `${id}.vm.vers.sh`, registeredBy: 'events-test' });
const json = (method: string, body?: unknown, headers: Record<string, string> = {}) => ({
  method,
  ...(body !== undefined && { body: JSON.stringify(body) }),
  headers: { 'content-type': 'application/json', ...headers },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the event stream of a real server', () => {
  let server: ServerProcess;
  before(async () => (server = await startServer({ env: { REGISTRY_DB: freshDb(), REGISTRY_EVENT_RETENTION: '100' } })));
  after(async () => server.stop());
  const api = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);

  it('delivers registered, updated and deregistered with id = revision, the type as event, and {type, revision, at, vm}', async () => {
    const watcher = await Watcher.open(`${server.url}/registry/events?id=ev-1`);
    const created = await (await api('/registry/vms', json('POST', vm('ev-1')))).json();
    await api('/registry/vms/ev-1', json('PATCH', { status: 'paused' }));
    await api('/registry/vms/ev-1', { method: 'DELETE' });
    const events = await watcher.until((e) => e.length === 3);
    await watcher.close();
    assert.deepEqual(events.map((e) => e.event), ['registered', 'updated', 'deregistered']);
    for (const event of events) {
      assert.equal(event.data.revision, event.id);
      assert.equal(event.data.type, event.event);
      assert.ok(!Number.isNaN(Date.parse(event.data.at)));
    }
    assert.deepEqual(events[0].data.vm, created);
    assert.equal(events[2].data.vm.status, 'paused', 'a deregistration carries the last state');
    assert.deepEqual([events[1].id - events[0].id, events[2].id - events[1].id], [1, 1]);
  });

  it('a watcher that disconnects and resumes with Last-Event-ID sees every event exactly once', async () => {
    const first = await Watcher.open(`${server.url}/registry/events?role=golden`);
    const writes = (async () => {
      for (let i = 0; i < 60; i++) {
        await api('/registry/vms', json('POST', vm(`resume-${i}`, 'golden')));
        if (i % 10 === 0) await sleep(5);
      }
    })();
    await first.until((e) => e.length >= 10);
    await first.close();
    const seen = [...first.events];
    const lastId = seen[seen.length - 1].id;
    const second = await Watcher.open(`${server.url}/registry/events?role=golden`, { 'last-event-id': String(lastId) });
    await writes;
    await second.until((e) => seen.length + e.length >= 60);
    await second.close();
    const all = [...seen, ...second.events];
    assert.deepEqual(all.map((e) => e.data.vm.id), Array.from({ length: 60 }, (_, i) => `resume-${i}`));
    assert.equal(new Set(all.map((e) => e.id)).size, 60);
  });

  it('many concurrent writers: revisions on the stream strictly increase with none skipped', async () => {
    const start = Number((await api('/registry/vms')).headers.get('x-registry-index'));
    const watcher = await Watcher.open(`${server.url}/registry/events?since=${start}`);
    await Promise.all(
      Array.from({ length: 8 }, (_, writer) =>
        (async () => {
          for (let i = 0; i < 20; i++) {
            const id = `conc-${writer}-${i}`;
            await api('/registry/vms', json('POST', vm(id, 'custom')));
            await api(`/registry/vms/${id}`, json('PATCH', { metadata: { i } }));
          }
        })(),
      ),
    );
    const events = await watcher.until((e) => e.length >= 320);
    await watcher.close();
    assert.deepEqual(
      events.map((e) => e.id),
      Array.from({ length: 320 }, (_, i) => start + 1 + i),
    );
  });

  it('?since= replays what was missed; a revision no longer kept answers 410; a bad one 400', async () => {
    const start = Number((await api('/registry/vms')).headers.get('x-registry-index'));
    await api('/registry/vms', json('POST', vm('since-1', 'infra')));
    const watcher = await Watcher.open(`${server.url}/registry/events?since=${start}`);
    const [event] = await watcher.until((e) => e.length >= 1);
    await watcher.close();
    assert.equal(event.data.vm.id, 'since-1');

    const gone = await api('/registry/events?since=0');
    assert.equal(gone.status, 410);
    assert.match((await gone.json()).error, /older than the event log keeps.*list again/);
    const ahead = await api(`/registry/events?since=${start + 10_000}`);
    assert.equal(ahead.status, 410);
    for (const [query, headers, error] of [
      ['?since=abc', {}, /^query parameter since must be a revision/],
      ['?since=-1', {}, /^query parameter since must be a revision/],
      ['', { 'last-event-id': 'x1' }, /^Last-Event-ID must be a revision number/],
      ['?role=boss', {}, /^query parameter role must be one of/],
    ] as const) {
      const response = await api(`/registry/events${query}`, { headers });
      assert.equal(response.status, 400, query);
      assert.match((await response.json()).error, error);
    }
  });

  it('filters by role and by id', async () => {
    const byRole = await Watcher.open(`${server.url}/registry/events?role=lieutenant`);
    const byId = await Watcher.open(`${server.url}/registry/events?id=filter-b`);
    await api('/registry/vms', json('POST', vm('filter-a', 'lieutenant')));
    await api('/registry/vms', json('POST', vm('filter-b', 'worker')));
    await api('/registry/vms', json('POST', vm('filter-c', 'lieutenant')));
    await byRole.until((e) => e.length >= 2);
    await byId.until((e) => e.length >= 1);
    await sleep(100);
    await Promise.all([byRole.close(), byId.close()]);
    assert.deepEqual(byRole.events.map((e) => e.data.vm.id), ['filter-a', 'filter-c']);
    assert.deepEqual(byId.events.map((e) => e.data.vm.id), ['filter-b']);
  });

  it('blocking query: list with ?index= answers as soon as the revision passes it', async () => {
    const first = await api('/registry/vms?role=infra');
    const index = Number(first.headers.get('x-registry-index'));
    const started = Date.now();
    const blocked = api(`/registry/discover/infra?index=${index}&wait=20s`);
    await sleep(300);
    await api('/registry/vms', json('POST', vm('blocking-1', 'infra')));
    const answer = await blocked;
    assert.ok(Date.now() - started < 10_000, 'answered on the change, not at the end of the wait');
    assert.ok(Number(answer.headers.get('x-registry-index')) > index);
    assert.ok((await answer.json()).vms.some((v: { id: string }) => v.id === 'blocking-1'));
  });

  it('blocking query: with no change it answers a normal 200 when the wait ends', async () => {
    const index = Number((await api('/registry/vms')).headers.get('x-registry-index'));
    const started = Date.now();
    const answer = await api(`/registry/vms?index=${index}&wait=600ms`);
    assert.equal(answer.status, 200);
    assert.ok(Date.now() - started >= 550);
    assert.equal(Number(answer.headers.get('x-registry-index')), index);
    const past = await api(`/registry/vms?index=${index - 1}&wait=10s`);
    assert.equal(past.status, 200, 'an index already passed answers at once');
  });

  it('blocking query: malformed index or wait is a 400 that says what is wrong', async () => {
    for (const [query, error] of [
      ['?index=abc', /^query parameter index must be a revision/],
      ['?index=1&wait=soon', /^query parameter wait must be a duration/],
      ['?wait=5s', /^query parameter wait needs index/],
    ] as const) {
      const response = await api(`/registry/vms${query}`);
      assert.equal(response.status, 400, query);
      assert.match((await response.json()).error, error);
    }
  });

  it('watchers and blocking queries whose clients go away leave nothing behind', async () => {
    const before = await (await api('/health')).json();
    const index = Number((await api('/registry/vms')).headers.get('x-registry-index'));
    const watchers = await Promise.all(Array.from({ length: 20 }, () => Watcher.open(`${server.url}/registry/events`)));
    const blocked = Array.from({ length: 20 }, () => {
      const request = httpRequest(`${server.url}/registry/vms?index=${index}&wait=5m`);
      request.on('error', () => undefined);
      request.end();
      return request;
    });
    await sleep(300);
    const during = await (await api('/health')).json();
    assert.equal(during.watchers - before.watchers, 20);
    assert.equal(during.waiting - before.waiting, 20);
    await Promise.all(watchers.map((w) => w.close()));
    for (const request of blocked) request.destroy();
    await sleep(300);
    const afterwards = await (await api('/health')).json();
    assert.equal(afterwards.watchers, before.watchers);
    assert.equal(afterwards.waiting, before.waiting);
  });

  it('two concurrent updaters with the same If-Match: exactly one wins', async () => {
    const created = await api('/registry/vms', json('POST', vm('contended')));
    const etag = created.headers.get('etag')!;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => api('/registry/vms/contended', json('PATCH', { name: `writer-${i}` }, { 'if-match': etag }))),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, ...Array(9).fill(412)]);
    const winner = await results.find((r) => r.status === 200)!.json();
    assert.equal((await (await api('/registry/vms/contended')).json()).name, winner.name);
  });
});

describe('a commit larger than the event log retention', () => {
  it('importing 30 VMs with a retention of 20 leaves the feed live: the import reaches the watchers that were current, and the next registration reaches a new watch, an open watch, a blocking query and /health', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb(), REGISTRY_EVENT_RETENTION: '20' } });
    try {
      const api = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
      const before = Number((await api('/registry/vms')).headers.get('x-registry-index'));
      const open = await Watcher.open(`${server.url}/registry/events`);
      const now = new Date().toISOString();
      const batch = Array.from({ length: 30 }, (_, i) => ({ ...vm(`bulk-${i}`), status: 'running', registeredAt: now, lastSeen: now }));
      const imported = await api('/registry/import', json('POST', { vms: batch }));
      assert.equal(imported.status, 200, await imported.clone().text());
      const afterImport: number = (await imported.json()).revision;
      assert.equal(afterImport, before + 30);

      const ids = batch.map((entry) => entry.id);
      await open.until((e) => e.length >= 30);
      assert.deepEqual(open.events.map((e) => e.data.vm.id), ids, 'the open watch got the whole import');
      const resumed = await Watcher.open(`${server.url}/registry/events?since=${before}`);
      await resumed.until((e) => e.length >= 30);
      assert.deepEqual(resumed.events.map((e) => e.data.vm.id), ids, 'a watcher resuming from before the import reads all of it');
      await resumed.close();

      const fresh = await Watcher.open(`${server.url}/registry/events`);
      const blocked = api(`/registry/vms?index=${afterImport}&wait=20s`);
      await waitFor(async () => (await (await api('/health')).json()).waiting === 1);
      const registered = await (await api('/registry/vms', json('POST', vm('after-bulk')))).json();

      const answer = await blocked;
      assert.equal(Number(answer.headers.get('x-registry-index')), afterImport + 1, 'the blocking query woke on the registration');
      assert.ok((await answer.json()).vms.some((v: { id: string }) => v.id === 'after-bulk'));
      for (const watcher of [open, fresh]) {
        const events = await watcher.until((e) => e.some((x) => x.data.vm?.id === 'after-bulk'));
        assert.deepEqual(events.at(-1)!.data, { type: 'registered', revision: afterImport + 1, at: registered.registeredAt, vm: registered });
      }
      assert.equal((await (await api('/health')).json()).revision, afterImport + 1);
      assert.equal((await api(`/registry/events?since=${before}`)).status, 410, 'the next commit trimmed the log back to 20');
      await Promise.all([open.close(), fresh.close()]);
    } finally {
      await server.stop();
    }
  });
});

/** Polls until `check` holds; fails after `timeoutMs`. */
async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await sleep(20);
  }
}

describe('time-driven events', () => {
  it('stale within about a second of the threshold, recovered at the next heartbeat, reaped after REGISTRY_REAP_AFTER', async () => {
    const server = await startServer({
      env: { REGISTRY_DB: freshDb(), REGISTRY_STALE_AFTER: '1s', REGISTRY_REAP_AFTER: '1500ms' },
    });
    try {
      const watcher = await Watcher.open(`${server.url}/registry/events?id=mortal`);
      const registered = Date.now();
      await fetch(`${server.url}/registry/vms`, json('POST', vm('mortal')));
      await watcher.until((e) => e.some((x) => x.event === 'stale'), 4000);
      const staleAfter = Date.now() - registered;
      assert.ok(staleAfter >= 1000 && staleAfter < 2500, `stale announced ${staleAfter} ms after the last heartbeat`);
      await fetch(`${server.url}/registry/vms/mortal/heartbeat`, { method: 'POST' });
      await watcher.until((e) => e.some((x) => x.event === 'recovered'));
      await watcher.until((e) => e.some((x) => x.event === 'reaped'), 6000);
      await watcher.close();
      assert.deepEqual(watcher.events.map((e) => e.event), ['registered', 'stale', 'recovered', 'stale', 'reaped']);
      assert.equal((await fetch(`${server.url}/registry/vms/mortal`)).status, 404);
    } finally {
      await server.stop();
    }
  });

  it('after a restart nothing is reaped until VMs have had one stale window to heartbeat again', async () => {
    const db = freshDb();
    const env = { REGISTRY_DB: db, REGISTRY_STALE_AFTER: '2s', REGISTRY_REAP_AFTER: '500ms' };
    const first = await startServer({ env });
    await fetch(`${first.url}/registry/vms`, json('POST', vm('survivor')));
    await first.stop();
    await sleep(3000); // the registry was away longer than stale + reap
    const second = await startServer({ env });
    try {
      const watcher = await Watcher.open(`${second.url}/registry/events?id=survivor&since=0`);
      await sleep(1000);
      assert.equal((await fetch(`${second.url}/registry/vms/survivor`)).status, 200, 'not reaped within the grace');
      await watcher.until((e) => e.some((x) => x.event === 'reaped'), 5000);
      await watcher.close();
      assert.deepEqual(watcher.events.map((e) => e.event), ['registered', 'stale', 'reaped']);
    } finally {
      await second.stop();
    }
  });

  it('a graceful stop ends open event streams instead of waiting for them', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb() } });
    const watcher = await Watcher.open(`${server.url}/registry/events`);
    const started = Date.now();
    assert.equal(await server.stop(), 0);
    assert.ok(Date.now() - started < 5000);
    await watcher.close();
  });
});
