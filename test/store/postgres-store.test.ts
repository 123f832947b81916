import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { UnavailableError } from '../../src/domain/errors.js';
import { startPostgres, type PostgresCluster } from '../support/postgres.js';
import { aVm } from '../../src/testing/fixtures.js';
import { registryStoreConformance } from './conformance.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';

let cluster: PostgresCluster;
before(async () => (cluster = await startPostgres()));
after(() => cluster?.destroy());
let databases = 0;

/** Polls until `check` holds, failing after 10 s with `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

registryStoreConformance('PostgreSQL', async ({ staleAfterMs, clock, eventRetention, healthChecks }) => {
  const url = await cluster.createDatabase(`conformance_${databases++}`);
  const store = await openPostgresStore({ url, clock, staleAfterMs, eventRetention, healthChecks });
  return { store, advance: async (ms) => clock.advance(ms), cleanup: () => store.close() };
});

describe('PostgreSQL store', () => {
  const open = async (url: string) => openPostgresStore({ url, staleAfterMs: 60_000 });

  it('replicas starting together migrate once and share one registry', async () => {
    const url = await cluster.createDatabase('replicas');
    const stores = await Promise.all(Array.from({ length: 4 }, () => open(url)));
    try {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query('SELECT version FROM registry_migrations ORDER BY version');
      await client.end();
      assert.deepEqual(rows.map((row) => row.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      const written = await stores[0].register(aVm());
      // Another replica's mirror has it once the notification arrives.
      await eventually(async () => (await stores[3].get('vm-1')) !== undefined, 'the write reaches the other replica');
      assert.deepEqual(await stores[3].get('vm-1'), written);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('takes the time from the database clock when no test clock is given', async () => {
    const store = await open(await cluster.createDatabase('database_clock'));
    try {
      const vm = await store.register(aVm());
      assert.ok(Math.abs(Date.parse(vm.lastSeen) - Date.now()) < 5000);
      const beat = await store.heartbeat('vm-1');
      assert.ok(Date.parse(beat.lastSeen) >= Date.parse(vm.lastSeen));
    } finally {
      await store.close();
    }
  });

  it('concurrent writers on several stores commit revisions in order, with none skipped', async () => {
    const url = await cluster.createDatabase('commit_order');
    const stores = await Promise.all(Array.from({ length: 3 }, () => open(url)));
    try {
      await Promise.all(
        stores.map((store, s) =>
          Promise.all(
            Array.from({ length: 30 }, async (_, i) => {
              const id = `vm-${s}-${i}`;
              await store.register(aVm({ id }));
              await store.update(id, { metadata: { i } });
              if (i % 3 === 0) await store.deregister(id);
            }),
          ),
        ),
      );
      const total = 3 * (30 + 30 + 10);
      // The other stores' last writes reach store 0 by notification; once it reports a revision, it has every change up to it.
      await eventually(async () => (await stores[0].revision()) === total, 'store 0 reaches the last revision');
      const events = await stores[0].eventsSince(0, 1000);
      assert.deepEqual(events.map((e) => e.revision), Array.from({ length: total }, (_, i) => i + 1));
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('a heartbeat commits without waiting for the disk; registrations and recoveries wait', async () => {
    const url = await cluster.createDatabase('durability');
    const store = await open(url);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    // A long WAL writer delay keeps an asynchronous commit visibly unflushed for a while.
    await admin.query(`ALTER SYSTEM SET wal_writer_delay = '10s'`);
    await admin.query('SELECT pg_reload_conf()');
    const flushed = async () =>
      (await admin.query('SELECT pg_current_wal_insert_lsn() = pg_current_wal_flush_lsn() AS flushed')).rows[0].flushed;
    // The server's own background records (such as the running-transactions snapshot the
    // background writer logs every 15 s) can land between an operation and the check and sit
    // unflushed. So the sequence gets three tries: a heartbeat that waited for the disk, or a
    // registration that did not, fails every one of them.
    const sequence = async (id: string) => {
      await store.register(aVm({ id }));
      const afterRegistration = await flushed();
      await store.heartbeat(id);
      const afterHeartbeat = await flushed();
      await store.update(id, { name: 'renamed' });
      return [afterRegistration, afterHeartbeat, await flushed()];
    };
    const expected = [true, false, true];
    try {
      let seen: boolean[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        seen = await sequence(`vm-${attempt}`);
        if (seen.every((value, i) => value === expected[i])) break;
      }
      assert.deepEqual(seen, expected, 'flushed after: a registration (yes), a heartbeat (no), a change (yes)');
    } finally {
      await admin.query('ALTER SYSTEM RESET wal_writer_delay');
      await admin.query('SELECT pg_reload_conf()');
      await admin.end();
      await store.close();
    }
  });

  it('refuses to start without a database, naming it but not its password', async () => {
    const url = `postgres://postgres:secret@127.0.0.1:${cluster.port}/no_such_database`;
    await assert.rejects(open(url), (error: Error) => {
      assert.match(error.message, /cannot open the PostgreSQL database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
      assert.doesNotMatch(error.message, /secret/);
      return true;
    });
  });

  it('a database that goes away: calls fail as unavailable, and work again once it is back', async () => {
    const store = await open(await cluster.createDatabase('outage'));
    let changes = 0;
    store.onChange(() => changes++);
    try {
      await store.register(aVm());
      cluster.stop();
      try {
        // Reads come from memory: they are refused once the replica has noticed its LISTEN connection is gone.
        await eventually(() => store.get('vm-1').then(() => false, () => true), 'reads refused');
        await assert.rejects(store.get('vm-1'), (error: Error) => error instanceof UnavailableError && /PostgreSQL/.test(error.message));
        await assert.rejects(store.heartbeat('vm-1'), UnavailableError);
        await assert.rejects(store.register(aVm({ id: 'vm-2' })), UnavailableError);
      } finally {
        cluster.start();
      }
      const before = changes;
      const deadline = Date.now() + 10_000;
      while (changes === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(changes > before, 'listeners are told once LISTEN is back, so feeds catch up');
      assert.equal((await store.get('vm-1'))?.id, 'vm-1');
      await store.register(aVm({ id: 'vm-2' }));
    } finally {
      await store.close();
    }
  });
});
