import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import build from 'fast-json-stringify';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/domain/clock.js';
import { VmListSchema, VmSchema, type Vm } from '../../src/domain/schemas/vm.js';
import { discoverFilter } from '../../src/store/store.js';
import { tempDir } from '../support/server-process.js';
import { aVm } from '../../src/testing/fixtures.js';
import { registryStoreConformance } from './conformance.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { openSqliteStore, StoreOpenError } from '../../src/store/sqlite/sqlite-store.js';

const dir = tempDir();
after(() => dir.remove());
let files = 0;

registryStoreConformance('SQLite', async ({ staleAfterMs, clock, eventRetention, healthChecks }) => {
  const store = openSqliteStore({ file: join(dir.path, `conformance-${files++}.db`), clock, staleAfterMs, eventRetention, healthChecks });
  return { store, advance: async (ms) => clock.advance(ms), cleanup: () => store.close() };
});

describe('SQLite store files', () => {
  const open = (file: string) => openSqliteStore({ file, clock: new ManualClock(), staleAfterMs: 1000 });

  it('folds the write-ahead log into the file while it runs, off the event loop, and leaves no log at close', async () => {
    const file = join(dir.path, 'checkpoints.db');
    const store = open(file);
    const before = statSync(file).size;
    // A few hundred pages of log: far below the point where a commit would checkpoint on its own.
    for (let i = 0; i < 100; i++) await store.register(aVm({ id: `vm-${i}`, metadata: { filler: 'x'.repeat(500) } }));
    assert.ok(statSync(`${file}-wal`).size > 100 * 512, 'the changes are in the log');
    for (let deadline = Date.now() + 5000; statSync(file).size === before; await new Promise((r) => setTimeout(r, 50))) {
      assert.ok(Date.now() < deadline, 'nothing reached the database file while the store ran');
    }
    await store.close();
    assert.equal(existsSync(`${file}-wal`), false);
    const reopened = open(file);
    assert.equal(await reopened.count(), 100);
    await reopened.close();
  });

  it('creates the directory and file on first start, and reopens what it wrote', async () => {
    const file = join(dir.path, 'nested', 'deeper', 'registry.db');
    const store = open(file);
    await store.register(aVm());
    await store.close();
    assert.ok(existsSync(file));
    assert.equal(existsSync(`${file}-wal`), false, 'a clean close folds the WAL back into the file');
    const reopened = open(file);
    assert.equal((await reopened.get('vm-1'))?.name, 'billing-lt');
    await reopened.close();
  });

  it('upgrades a database of schema version 1 in place, keeping its VMs and their lastSeen', async () => {
    const file = join(dir.path, 'version-1.db');
    const old = new Database(file);
    old.exec(SQLITE_MIGRATIONS[0]);
    old.pragma('user_version = 1');
    old
      .prepare(
        `INSERT INTO vms (id, name, role, status, address, registered_by, services, metadata, registered_at, last_seen, revision)
         VALUES ('kept', 'kept', 'infra', 'running', 'kept.vm.vers.sh', 'orchestrator', '[{"port":80,"name":"web"}]', NULL, 1000, 5000, 1)`,
      )
      .run();
    old.prepare(`UPDATE registry_state SET value = 1 WHERE key = 'revision'`).run();
    old.close();
    const store = open(file);
    assert.deepEqual(await store.get('kept'), {
      id: 'kept',
      name: 'kept',
      role: 'infra',
      status: 'running',
      address: 'kept.vm.vers.sh',
      registeredBy: 'orchestrator',
      registeredAt: new Date(1000).toISOString(),
      lastSeen: new Date(5000).toISOString(),
      stale: true,
      services: [{ name: 'web', port: 80 }],
      revision: 1,
    });
    const beat = await store.heartbeat('kept');
    await store.close();
    const upgraded = open(file);
    assert.equal((await upgraded.get('kept'))?.lastSeen, beat.lastSeen, 'a heartbeat after the upgrade is kept across a restart');
    assert.equal(await upgraded.revision(), 1);
    await upgraded.close();
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
    db.close();
  });

  it('refuses a file that is not a database, naming the file', () => {
    const file = join(dir.path, 'garbage.db');
    writeFileSync(file, 'this is not sqlite '.repeat(500));
    assert.throws(() => open(file), (error: Error) => error instanceof StoreOpenError && error.message.includes(file));
  });

  it('refuses a path it cannot create', () => {
    const blocker = join(dir.path, 'a-file');
    writeFileSync(blocker, '');
    assert.throws(() => open(join(blocker, 'registry.db')), StoreOpenError);
  });
});

describe('SQLite store mirror', () => {
  const clock = new ManualClock();
  // A window no test outlives: what reaches the file does so because of a flush, never a timer.
  const open = (file: string) => openSqliteStore({ file, clock, staleAfterMs: 60_000, heartbeatWindowMs: 3_600_000 });
  const inFile = (file: string, id: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db
        .prepare(
          `SELECT max(vms.last_seen, coalesce(heartbeats.last_seen, 0)) AS last_seen, revision, stale_announced
           FROM vms LEFT JOIN heartbeats USING (id) WHERE id = ?`,
        )
        .get(id) as
        | { last_seen: number; revision: number; stale_announced: number }
        | undefined;
    } finally {
      db.close();
    }
  };

  it('answers the exact text the route schemas would serialize', async () => {
    const store = open(join(dir.path, 'exact.db'));
    // Service fields in an order other than the schema's, unicode, and prototype-like keys.
    const services = JSON.parse('[{"port": 3001, "healthPath": "/h", "protocol": "grpc", "name": "pi-rpc"}, {"port": 80, "name": "web"}]');
    await store.register(aVm({ id: 'silent', name: 'tyst 🤫', services, metadata: { m: 'ü' } }));
    await store.register(aVm({ id: 'silent-ascii', services: [{ name: 'web', port: 80, protocol: 'http' }] }));
    clock.advance(60_001);
    await store.register(aVm({ id: 'a', name: 'żółw 🐢 "quoted"', services, metadata: JSON.parse('{"__proto__": {"x": 1}, "2": [1.5, null], "k": "\u2028"}') }));
    clock.advance(5);
    await store.register(aVm({ id: 'b', services: undefined, metadata: undefined, status: 'paused' }));
    await store.heartbeat('a');
    const listing = await store.list();
    assert.equal((await store.listJson()).body.toString(), build(VmListSchema)({ ...listing, count: listing.vms.length }));
    assert.equal((await store.listJson({ role: 'infra' })).body.toString(), build(VmListSchema)({ vms: [], count: 0, revision: listing.revision }));
    assert.equal((await store.getJson('a'))?.body.toString(), build(VmSchema)(await store.get('a')));
    assert.equal((await store.getJson('a'))?.revision, (await store.get('a'))?.revision);
    for (const id of ['silent', 'silent-ascii']) {
      assert.equal((await store.get(id))?.stale, true);
      assert.equal((await store.getJson(id))?.body.toString(), build(VmSchema)(await store.get(id)));
    }
    const stale = await store.list({ stale: true });
    assert.equal((await store.listJson({ stale: true })).body.toString(), build(VmListSchema)({ ...stale, count: stale.vms.length }));
    await store.close();
  });

  it('names the VMs of a listing text beside it, in its order, fresh and cached alike', async () => {
    const store = open(join(dir.path, 'listing-ids.db'));
    await store.register(aVm({ id: 'old', role: 'lieutenant' }));
    clock.advance(60_001);
    await store.register(aVm({ id: 'w', role: 'worker', metadata: { note: '"id":"fake"' } }));
    await store.register(aVm({ id: 'l', role: 'lieutenant' }));
    await store.register(aVm({ id: 'p', role: 'lieutenant', status: 'paused' }));
    for (const filter of [{}, discoverFilter('lieutenant'), { stale: true }, { role: 'worker' as const }]) {
      for (const time of ['fresh', 'cached']) {
        const { body, ids } = await store.listJson(filter);
        const shown = (JSON.parse(body.toString()) as { vms: { id: string }[] }).vms.map((vm) => vm.id);
        assert.deepEqual(ids, shown, `${JSON.stringify(filter)}, ${time}`);
      }
    }
    assert.deepEqual((await store.listJson(discoverFilter('lieutenant'))).ids, ['l'], 'paused and stale ones are not discovered');
    await store.close();
  });

  it('answers a listing again only while it is still what a fresh one would be', async () => {
    const store = open(join(dir.path, 'listing-cache.db'));
    const fresh = async (filter: Parameters<typeof store.list>[0]) => {
      const listing = await store.list(filter);
      return build(VmListSchema)({ ...listing, count: listing.vms.length });
    };
    const same = async (filter: Parameters<typeof store.list>[0] = {}) => {
      const first = (await store.listJson(filter)).body.toString();
      assert.equal(first, await fresh(filter));
      assert.equal((await store.listJson(filter)).body.toString(), first, 'asked again with nothing changed');
    };
    await store.register(aVm({ id: 'a' }));
    clock.advance(40_000);
    await store.register(aVm({ id: 'b' }));
    await same(discoverFilter('lieutenant'));
    await same({ stale: true });
    await same();
    clock.advance(1_000);
    await store.heartbeat('b');
    assert.equal((await store.listJson()).body.toString(), await fresh({}), 'a heartbeat shows in the next listing');
    await store.update('b', { name: 'renamed' });
    assert.equal((await store.listJson()).body.toString(), await fresh({}), 'so does a change');
    // 'a' was last seen 41 s ago and goes stale at 60 s with no sweep, no event, no heartbeat.
    await same(discoverFilter('lieutenant'));
    await same({ stale: false });
    await same();
    clock.advance(19_001);
    assert.equal((await store.listJson()).body.toString(), await fresh({}), 'the full listing shows "a" stale');
    const discovered = JSON.parse((await store.listJson(discoverFilter('lieutenant'))).body.toString());
    assert.deepEqual(discovered.vms.map((vm: { id: string }) => vm.id), ['b'], 'time alone turned "a" stale');
    assert.equal((await store.listJson({ stale: true })).body.toString(), await fresh({ stale: true }));
    assert.equal((await store.listJson({ stale: false })).body.toString(), await fresh({ stale: false }));
    await store.close();
  });

  it('shows a heartbeat at once and writes it to the file by a clean close', async () => {
    const file = join(dir.path, 'heartbeat.db');
    const store = open(file);
    const vm = await store.register(aVm());
    clock.advance(30_000);
    const beat = await store.heartbeat('vm-1');
    assert.equal((await store.get('vm-1'))?.lastSeen, beat.lastSeen);
    assert.equal(JSON.parse((await store.listJson(discoverFilter('lieutenant'))).body.toString()).vms[0].lastSeen, beat.lastSeen);
    assert.equal(inFile(file, 'vm-1')?.last_seen, Date.parse(vm.lastSeen), 'not written yet: the window is still open');
    await store.close();
    assert.equal(inFile(file, 'vm-1')?.last_seen, Date.parse(beat.lastSeen));
  });

  it('a change does not write back the lastSeen a pending heartbeat replaced', async () => {
    const file = join(dir.path, 'heartbeat-then-patch.db');
    const store = open(file);
    await store.register(aVm());
    clock.advance(30_000);
    const beat = await store.heartbeat('vm-1');
    await store.update('vm-1', { metadata: { note: 'x' } });
    assert.equal((await store.get('vm-1'))?.lastSeen, beat.lastSeen);
    assert.equal(inFile(file, 'vm-1')?.last_seen, Date.parse(beat.lastSeen), 'the change committed it');
    await store.close();
  });

  it('the sweeper judges staleness by heartbeats still pending, and a recovery is committed before the answer', async () => {
    const file = join(dir.path, 'recovery.db');
    const store = open(file);
    await store.register(aVm({ id: 'beating' }));
    await store.register(aVm({ id: 'quiet' }));
    clock.advance(40_000);
    await store.heartbeat('beating');
    clock.advance(30_000);
    assert.equal(await store.sweep(), 1, 'only quiet is stale');
    clock.advance(1);
    await store.heartbeat('quiet');
    const stored = inFile(file, 'quiet');
    assert.equal(stored?.stale_announced, 0);
    assert.equal(stored?.last_seen, clock.now());
    assert.equal(stored?.revision, await store.revision());
    await store.close();
  });

  it('the sweeper skips its walk only while nothing can be silent, a clock stepped back included', async () => {
    const store = open(join(dir.path, 'silent-floor.db'));
    await store.register(aVm({ id: 'a' }));
    clock.advance(50_000);
    await store.heartbeat('a');
    clock.advance(20_000);
    assert.equal(await store.sweep(), 0, 'a was seen 20 s ago');
    // The wall clock steps back 30 s (an NTP correction): the next heartbeat is older than any the sweeper saw.
    clock.advance(-30_000);
    await store.heartbeat('a');
    clock.advance(60_001);
    assert.equal(await store.sweep(), 1, 'a has now been silent past the threshold');
    assert.equal((await store.list({ stale: true })).vms[0]?.id, 'a');
    await store.close();
  });

  it('after a restart holds what the file holds, in the same order and text', async () => {
    const file = join(dir.path, 'restart.db');
    const store = open(file);
    for (const id of ['c', 'a', 'b']) await store.register(aVm({ id, role: id === 'b' ? 'worker' : 'lieutenant' }));
    clock.advance(1000);
    await store.put(aVm({ id: 'a', role: 'infra', services: JSON.parse('[{"port": 1, "name": "n"}]') }));
    await store.register(aVm({ id: 'd' }));
    await store.update('c', { status: 'paused' });
    await store.deregister('b');
    await store.heartbeat('d');
    const before = { all: await store.listJson(), infra: await store.listJson({ role: 'infra' }), list: await store.list() };
    await store.close();
    const reopened = open(file);
    assert.deepEqual({ all: await reopened.listJson(), infra: await reopened.listJson({ role: 'infra' }), list: await reopened.list() }, before);
    assert.equal(await reopened.count(), 3);
    await reopened.close();
  });

  it("after a restart, the change feed's listing gives each VM as listed, though it changed before anything read its JSON", async () => {
    const file = join(dir.path, 'listed.db');
    const store = open(file);
    for (const id of ['renamed', 'moved', 'deleted']) await store.register(aVm({ id, name: 'as-listed' }));
    await store.close();
    const reopened = open(file);
    const { entries } = await reopened.feedListing();
    await reopened.update('renamed', { name: 'changed', services: [] });
    await reopened.put(aVm({ id: 'moved', name: 'changed', role: 'infra', address: 'elsewhere' }));
    await reopened.deregister('deleted');
    assert.deepEqual(
      entries.map((entry) => JSON.parse(entry.json) as Vm).map(({ id, name, role, address, services }) => ({ id, name, role, address, services })),
      ['deleted', 'moved', 'renamed'].map((id) => ({ id, name: 'as-listed', role: 'lieutenant', address: `${id}.vm.vers.sh`, services: [{ name: 'pi-rpc', port: 3001 }] })),
    );
    assert.equal((await reopened.get('renamed'))?.name, 'changed', 'the store itself answers the change');
    await reopened.close();
  });
});
