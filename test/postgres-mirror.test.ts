import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Role } from '../src/domain/schemas/vm.js';
import { aRegistration } from '../src/testing/fixtures.js';
import { json } from './support/http.js';
import { startPostgres, type PostgresCluster } from './support/postgres.js';
import { startServer, type ServerProcess } from './support/server-process.js';
import { Watcher } from './support/watch.js';

/**
 * Each PostgreSQL replica answers reads from its own copy of the registry in memory, kept
 * current from the event log. These tests run two real replicas on one real cluster and
 * check that the copy on the replica that did not write ends exactly as the database is.
 */
let cluster: PostgresCluster;
before(async () => (cluster = await startPostgres()));
after(() => cluster?.destroy());

const vm = (id: string, role: Role = 'worker') => aRegistration({ id, role });
const MIN_INDEX = 'x-registry-min-index';

async function startReplica(url: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServer({ env: { DATABASE_URL: url, ...env } });
}
const stopAll = (servers: ServerProcess[]) => Promise.all(servers.map((server) => server.stop()));

/** Polls until `check` holds, failing after 15 s with `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await sleep(20);
  }
}

/** The whole listing of `server` once it has reached `revision`, with its revision. */
async function listingAt(server: ServerProcess, revision: number): Promise<{ vms: unknown[]; revision: number }> {
  const answer = await fetch(`${server.url}/registry/vms`, { headers: { [MIN_INDEX]: String(revision) } });
  assert.equal(answer.status, 200, await answer.clone().text());
  return answer.json();
}

/**
 * Lists on `writer`, then on `reader` at the writer's revision: at the same revision the two
 * must be the same registry. The reader may already be further (a sweeper still writing):
 * then both are listed again.
 */
async function assertSameRegistry(writer: ServerProcess, reader: ServerProcess): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const written = await (await fetch(`${writer.url}/registry/vms`)).json();
    const read = await listingAt(reader, written.revision);
    if (read.revision === written.revision) {
      assert.deepEqual(read.vms, written.vms);
      return;
    }
    assert.ok(read.revision > written.revision, 'a read at a revision is never earlier');
    assert.ok(attempt < 20, 'the registry kept changing between the two listings');
  }
}

const health = async (server: ServerProcess) => (await fetch(`${server.url}/health`)).json();

describe('a replica reading its own copy of the registry', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  before(async () => {
    const url = await cluster.createDatabase('mirror');
    [a, b] = await Promise.all([startReplica(url), startReplica(url)]);
  });
  after(() => stopAll([a, b]));

  it('answers a read naming the revision of a write made on the other replica with that write', async () => {
    const created = await fetch(`${a.url}/registry/vms`, json('POST', vm('read-your-write', 'infra')));
    assert.equal(created.status, 201);
    const revision = JSON.parse(created.headers.get('etag')!);
    const headers = { [MIN_INDEX]: String(revision) };

    const got = await fetch(`${b.url}/registry/vms/read-your-write`, { headers });
    assert.equal(got.status, 200);
    assert.deepEqual(await got.json(), await created.json());
    const discovered = await fetch(`${b.url}/registry/discover/infra`, { headers });
    assert.ok(Number(discovered.headers.get('x-registry-index')) >= revision);
    assert.deepEqual((await discovered.json()).vms.map((v: { id: string }) => v.id), ['read-your-write']);
  });

  it('refuses an X-Registry-Min-Index that is not a revision, naming the header', async () => {
    const answer = await fetch(`${b.url}/registry/vms`, { headers: { [MIN_INDEX]: 'latest' } });
    assert.equal(answer.status, 400);
    assert.match((await answer.json()).error, /^header x-registry-min-index must be a revision/);
  });

  it('reads its own writes at once, without naming a revision', async () => {
    for (let i = 0; i < 20; i++) {
      const id = `own-${i}`;
      assert.equal((await fetch(`${b.url}/registry/vms`, json('POST', vm(id)))).status, 201);
      assert.equal((await fetch(`${b.url}/registry/vms/${id}`)).status, 200);
      assert.equal((await fetch(`${b.url}/registry/vms/${id}`, json('PATCH', { name: `renamed-${i}` }))).status, 200);
      assert.equal((await (await fetch(`${b.url}/registry/vms/${id}`)).json()).name, `renamed-${i}`);
      assert.equal((await fetch(`${b.url}/registry/vms/${id}`, { method: 'DELETE' })).status, 200);
      assert.equal((await fetch(`${b.url}/registry/vms/${id}`)).status, 404);
    }
  });

  it('follows registrations, replacements, updates, deregistrations, imports and heartbeats made on the other replica', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await fetch(`${a.url}/registry/vms`, json('POST', vm(`follow-${i}`, i % 2 ? 'worker' : 'infra')))).status, 201);
    assert.equal((await fetch(`${a.url}/registry/vms/follow-1`, json('PUT', { ...vm('follow-1'), name: 'replaced' }))).status, 200);
    assert.equal((await fetch(`${a.url}/registry/vms/follow-2`, json('PATCH', { status: 'paused', metadata: { note: 'ünïcode ✓' } }))).status, 200);
    assert.equal((await fetch(`${a.url}/registry/vms/follow-3`, { method: 'DELETE' })).status, 200);
    const now = new Date().toISOString();
    const imported = await fetch(
      `${a.url}/registry/import`,
      json('POST', { vms: ['follow-4', 'imported-1', 'imported-2'].map((id) => ({ ...vm(id), registeredAt: now, lastSeen: now })) }),
    );
    assert.equal(imported.status, 200, await imported.clone().text());
    await assertSameRegistry(a, b);
    // A heartbeat makes no revision: it reaches b by its own notification, soon after.
    await sleep(5);
    const beat = await (await fetch(`${a.url}/registry/vms/follow-5/heartbeat`, { method: 'POST' })).json();
    await eventually(async () => (await (await fetch(`${b.url}/registry/vms/follow-5`)).json()).lastSeen === beat.lastSeen, 'the heartbeat reaches b');
  });

  it('reports in /health and /metrics how far it trails the database', async () => {
    const { revision } = await (await fetch(`${a.url}/registry/vms`)).json();
    await listingAt(b, revision);
    assert.deepEqual((await health(b)).mirror, { revisions: 0, ms: 0, state: 'current' });
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    assert.match(metrics, /^vm_registry_mirror_lag_revisions 0$/m);
    assert.match(metrics, /^vm_registry_mirror_lag_seconds 0$/m);
    assert.match(metrics, /^vm_registry_mirror_current 1$/m);
  });
});

describe('the sweeper seen from the replica that does not sweep', () => {
  let servers: ServerProcess[] = [];
  after(() => stopAll(servers));

  it('a VM turning stale, recovering and being reaped is the same on both replicas', async () => {
    const url = await cluster.createDatabase('mirror_sweeps');
    const [a, b] = (servers = await Promise.all([0, 1].map(() => startReplica(url, { REGISTRY_STALE_AFTER: '1s', REGISTRY_REAP_AFTER: '2s' }))));
    const watcher = await Watcher.open(`${b.url}/registry/events?id=sweep-1`);
    await fetch(`${a.url}/registry/vms`, json('POST', vm('sweep-1')));
    await fetch(`${a.url}/registry/vms`, json('POST', vm('sweep-2')));
    await watcher.until((events) => events.some((e) => e.event === 'stale'), 10_000);
    // Both silent past the threshold first: compared while one is crossing it, the two listings
    // could differ only by when each replica was asked.
    const bothStale = async () => ((await (await fetch(`${a.url}/registry/vms?stale=true`)).json()) as { vms: unknown[] }).vms.length === 2;
    await eventually(bothStale, 'both VMs stale on a');
    await assertSameRegistry(a, b);
    assert.equal((await (await fetch(`${b.url}/registry/vms/sweep-1`)).json()).stale, true);

    assert.equal((await fetch(`${a.url}/registry/vms/sweep-1/heartbeat`, { method: 'POST' })).status, 200);
    await watcher.until((events) => events.some((e) => e.event === 'recovered'), 10_000);
    assert.equal((await (await fetch(`${b.url}/registry/vms/sweep-1`)).json()).stale, false);

    await eventually(async () => (await fetch(`${b.url}/registry/vms/sweep-2`)).status === 404, 'the reaped VM leaves b');
    await assertSameRegistry(a, b);
    await watcher.close();
  });
});

describe('a replica that loses its LISTEN connection', () => {
  let servers: ServerProcess[] = [];
  after(() => stopAll(servers));

  it('answers 503 until it has reloaded, then has every change made meanwhile, and its watchers miss none', async () => {
    const url = await cluster.createDatabase('mirror_listen');
    const [a, b] = (servers = await Promise.all([startReplica(url), startReplica(url)]));
    for (let i = 0; i < 5; i++) await fetch(`${a.url}/registry/vms`, json('POST', vm(`listen-${i}`)));
    const start = (await (await fetch(`${a.url}/registry/vms`)).json()).revision;
    await listingAt(b, start);
    const watcher = await Watcher.open(`${b.url}/registry/events?since=${start}`);

    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { rows } = await admin.query('SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1', [
        `vm-registry listen ${b.child.pid}`,
      ]);
      assert.deepEqual(rows, [{ done: true }], "b's LISTEN connection is found by its name and ended");
    } finally {
      await admin.end();
    }
    // Written while b hears nothing: changes, and heartbeats, which only LISTEN would have told it of.
    const beats: Record<string, string> = {};
    for (let i = 0; i < 5; i++) {
      await fetch(`${a.url}/registry/vms/listen-${i}`, json('PATCH', { metadata: { round: i } }));
      beats[`listen-${i}`] = (await (await fetch(`${a.url}/registry/vms/listen-${i}/heartbeat`, { method: 'POST' })).json()).lastSeen;
      await fetch(`${a.url}/registry/vms`, json('POST', vm(`during-${i}`)));
    }
    await fetch(`${a.url}/registry/vms/listen-0`, { method: 'DELETE' });

    await eventually(async () => (await health(b)).mirror.state === 'current', 'b is current again');
    assert.match(b.output(), /lost the PostgreSQL LISTEN connection/);
    await assertSameRegistry(a, b);
    for (const [id, lastSeen] of Object.entries(beats)) {
      if (id !== 'listen-0') assert.equal((await (await fetch(`${b.url}/registry/vms/${id}`)).json()).lastSeen, lastSeen, `${id}'s heartbeat`);
    }
    // Five updates, five registrations and a deregistration; heartbeats make no events.
    const expected = Array.from({ length: 11 }, (_, i) => start + 1 + i);
    const events = await watcher.until((e) => e.length >= expected.length, 10_000);
    assert.deepEqual(events.map((e) => e.id), expected, 'every revision, in order, none skipped');
    await watcher.close();
  });
});

describe('a replica started while the other writes', () => {
  let servers: ServerProcess[] = [];
  after(() => stopAll(servers));

  it('ends with the same registry as the database', async () => {
    const url = await cluster.createDatabase('mirror_start');
    const a = await startReplica(url);
    servers = [a];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await fetch(`${a.url}/registry/vms`, json('POST', vm(`busy-${i}`, i % 3 ? 'worker' : 'infra')));
        if (i % 2) await fetch(`${a.url}/registry/vms/busy-${i - 1}`, json('PATCH', { metadata: { i } }));
        if (i % 5 === 4) await fetch(`${a.url}/registry/vms/busy-${i - 2}`, { method: 'DELETE' });
        await fetch(`${a.url}/registry/vms/busy-${i}/heartbeat`, { method: 'POST' });
      }
    })();
    await sleep(300);
    const b = await startReplica(url);
    servers.push(b);
    await sleep(500);
    writing = false;
    await writer;
    await assertSameRegistry(a, b);
    assert.ok((await (await fetch(`${b.url}/registry/vms`)).json()).count > 10, 'the writer wrote before and after b started');
  });

  it('loads its copy once: changes heard while it loads are read from the log after the load, not beside it', async () => {
    const url = await cluster.createDatabase('mirror_start_once');
    const a = await startReplica(url);
    servers.push(a);
    // Enough VMs that the load takes a while, so that notifications arrive while it runs.
    const now = new Date().toISOString();
    for (let batch = 0; batch < 4; batch++) {
      const vms = Array.from({ length: 2500 }, (_, i) => ({ ...vm(`many-${batch}-${i}`), registeredAt: now, lastSeen: now }));
      assert.equal((await fetch(`${a.url}/registry/import`, json('POST', { vms }))).status, 200);
    }
    let writing = true;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; writing; i++) await fetch(`${a.url}/registry/vms/many-0-${w}`, json('PATCH', { metadata: { i } }));
    });
    const b = await startReplica(url);
    servers.push(b);
    await sleep(300);
    writing = false;
    await Promise.all(writers);
    await assertSameRegistry(a, b);
    const log = b.output();
    assert.doesNotMatch(log, /fell behind the event log/, 'no revision was missing from the log it followed');
    assert.equal(log.split("loaded this replica's copy of the registry").length - 1, 1, 'one load at start, none again');
  });
});
