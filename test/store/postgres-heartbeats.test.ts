import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ManualClock } from '../../src/domain/clock.js';
import { ForbiddenError, NotFoundError, UnavailableError } from '../../src/domain/errors.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { aVm, STALE_AFTER_MS } from '../../src/testing/fixtures.js';
import { startPostgres, type PostgresCluster } from '../support/postgres.js';

/**
 * Heartbeats on PostgreSQL are batched: those that arrive while one batch is in flight go
 * together in the next, one statement and as few notifications as the payload limit allows.
 * These tests run real stores on a real cluster and look at what reaches the database.
 */
let cluster: PostgresCluster;
before(async () => (cluster = await startPostgres()));
after(() => cluster?.destroy());

/** Polls until `check` holds, failing after 10 s with `what`. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await sleep(20);
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** Every heartbeat notification the database sends, on the channel of either version. */
async function heartbeatNotifications(url: string): Promise<{ payloads: string[]; close(): Promise<void> }> {
  const client = await connect(url);
  const payloads: string[] = [];
  client.on('notification', ({ payload = '' }) => payloads.push(payload));
  await client.query('LISTEN vm_registry_heartbeats; LISTEN vm_registry_heartbeat_batches');
  return { payloads, close: () => client.end() };
}

/** How many times the heartbeat functions of any version ran, once the store's connections have ended and reported it. */
async function heartbeatStatements(admin: pg.Client, atLeast: number): Promise<number> {
  const calls = async () => {
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await admin.query<{ calls: string | null }>(
      `SELECT sum(calls) AS calls FROM pg_stat_user_functions WHERE funcname IN ('registry_heartbeat_v2', 'registry_heartbeats')`,
    );
    return Number(rows[0].calls ?? 0);
  };
  await eventually(async () => (await calls()) >= atLeast, `the heartbeat functions' statistics reach ${atLeast} calls`);
  return calls();
}

const rejection = (result: PromiseSettledResult<unknown>) => (result.status === 'rejected' ? result.reason : undefined);

describe('heartbeats on PostgreSQL', () => {
  it('heartbeats arriving together go to the database as one statement, and each caller gets its own answer', async () => {
    const url = await cluster.createDatabase('batched_answers');
    const admin = await connect(url);
    // Counts calls of SQL functions, for the statistics below.
    await admin.query(`ALTER DATABASE batched_answers SET track_functions = 'all'`);
    const clock = new ManualClock(Date.now());
    const store = await openPostgresStore({ url, clock, staleAfterMs: STALE_AFTER_MS });
    try {
      await store.register(aVm({ id: 'quiet-1', owner: 'pool-a' }));
      await store.register(aVm({ id: 'quiet-2', owner: 'pool-a' }));
      clock.advance(STALE_AFTER_MS + 1);
      assert.equal(await store.sweep(), 2, 'both quiet VMs announced stale');
      const mine = Array.from({ length: 100 }, (_, i) => `mine-${i}`);
      for (const id of mine) await store.register(aVm({ id, owner: 'pool-a' }));
      await store.register(aVm({ id: 'theirs', owner: 'pool-b' }));
      clock.advance(1000);
      const now = new Date(clock.now()).toISOString();
      const start = await store.revision();

      const asked = [
        ...mine.map((id) => ({ id, owner: 'pool-a' })),
        { id: 'mine-0', owner: 'pool-a' },
        { id: 'quiet-1', owner: 'pool-a' },
        { id: 'quiet-1', owner: 'pool-a' },
        { id: 'quiet-2', owner: 'pool-a' },
        { id: 'nobody', owner: 'pool-a' },
        { id: 'theirs', owner: 'pool-a' },
        { id: 'theirs', owner: undefined },
      ];
      const answers = await Promise.allSettled(asked.map(({ id, owner }) => store.heartbeat(id, { owner })));

      answers.forEach((answer, i) => {
        const { id, owner } = asked[i];
        if (id === 'nobody') assert.ok(rejection(answer) instanceof NotFoundError, `${id}: 404`);
        else if (id === 'theirs' && owner === 'pool-a') assert.ok(rejection(answer) instanceof ForbiddenError, `${id} for ${owner}: 403`);
        else assert.deepEqual(answer, { status: 'fulfilled', value: { id, lastSeen: now } }, `${id} for ${owner ?? 'the admin'}`);
      });
      const events = await store.eventsSince(start, 100);
      assert.deepEqual(
        events.map((event) => `${event.type}:${event.vm.id}`).sort(),
        ['recovered:quiet-1', 'recovered:quiet-2'],
        'each stale VM recovers once, even when its heartbeat came twice in one batch',
      );
      assert.deepEqual(events.map((event) => event.revision), [start + 1, start + 2], 'each recovery has a revision of its own');
      for (const event of events) assert.equal((await store.get(event.vm.id))?.revision, event.revision);
      assert.equal((await store.get('theirs'))?.lastSeen, now, "the admin's heartbeat moved it, the other owner's did not fail it");
    } finally {
      await store.close();
    }
    try {
      // The first heartbeat left alone; every other one waited for it and went in the next statement.
      assert.equal(await heartbeatStatements(admin, 2), 2, '107 heartbeats: statements run by the database');
    } finally {
      await admin.end();
    }
  });

  it("a batch's notifications stay under PostgreSQL's 8,000 bytes, and the other replica's copy gets every heartbeat's lastSeen", async () => {
    const url = await cluster.createDatabase('batched_notifications');
    const [writer, reader] = await Promise.all([
      openPostgresStore({ url, staleAfterMs: STALE_AFTER_MS }),
      openPostgresStore({ url, staleAfterMs: STALE_AFTER_MS }),
    ]);
    const heard = await heartbeatNotifications(url);
    try {
      // Ids of the longest length allowed, so that a batch needs several notifications.
      const ids = Array.from({ length: 300 }, (_, i) => `${'x'.repeat(124)}${String(i).padStart(4, '0')}`);
      await Promise.all(ids.map((id) => writer.register(aVm({ id }))));
      const revision = await writer.revision();
      await eventually(async () => (await reader.revision()) >= revision, 'the reader has every registration');
      await sleep(5);

      const beats = await Promise.all(ids.map((id) => writer.heartbeat(id)));

      for (const beat of beats) {
        await eventually(async () => (await reader.get(beat.id))?.lastSeen === beat.lastSeen, `the reader sees ${beat.id.slice(-4)}'s heartbeat`);
      }
      const announced = () => heard.payloads.flatMap((payload) => payload.split('\n')).map((line) => line.split(' '));
      await eventually(async () => announced().length >= ids.length, 'every heartbeat is announced');
      assert.equal(announced().length, ids.length, 'each heartbeat is announced once');
      const lastSeen = new Map(announced().map(([, ms, id]) => [id, Number(ms)]));
      for (const beat of beats) {
        assert.equal(lastSeen.get(beat.id), Date.parse(beat.lastSeen), `${beat.id.slice(-4)} is announced with the lastSeen answered`);
      }
      for (const payload of heard.payloads) assert.ok(Buffer.byteLength(payload) < 8000, `a payload of ${Buffer.byteLength(payload)} bytes`);
      assert.ok(heard.payloads.length < ids.length / 10, `${ids.length} heartbeats in ${heard.payloads.length} notifications`);
    } finally {
      await heard.close();
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  it('two replicas beating the same VMs at once, in opposite orders, never deadlock', async () => {
    const url = await cluster.createDatabase('batched_no_deadlock');
    const stores = await Promise.all([0, 1].map(() => openPostgresStore({ url, staleAfterMs: STALE_AFTER_MS })));
    try {
      const ids = Array.from({ length: 200 }, (_, i) => `vm-${i}`);
      await Promise.all(ids.map((id) => stores[0].register(aVm({ id }))));
      const rounds = Array.from({ length: 5 }, () =>
        Promise.all([
          Promise.all(ids.map((id) => stores[0].heartbeat(id))),
          Promise.all([...ids].reverse().map((id) => stores[1].heartbeat(id))),
        ]),
      );
      const answers = (await Promise.all(rounds)).flat(2);
      assert.equal(answers.length, 2 * 5 * ids.length);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('an import of VMs that heartbeat meanwhile never deadlocks with their batches', async () => {
    const store = await openPostgresStore({ url: await cluster.createDatabase('batched_import'), staleAfterMs: STALE_AFTER_MS });
    try {
      const ids = Array.from({ length: 200 }, (_, i) => `vm-${String(i).padStart(3, '0')}`);
      await Promise.all(ids.map((id) => store.register(aVm({ id }))));
      // In the opposite order to the batches' locks, so that the two would wait for each other.
      const imported = [...ids].reverse().map((id) => ({ ...aVm({ id }), registeredAt: Date.now(), lastSeen: Date.now() }));
      for (let round = 0; round < 3; round++) {
        const [result, beats] = await Promise.all([
          store.import(imported),
          Promise.allSettled(ids.map((id) => store.heartbeat(id))),
        ]);
        assert.equal(result.replaced, ids.length);
        // A heartbeat that waited for a row the import replaced finds it gone: a 404, as for any deleted VM.
        for (const beat of beats) assert.ok(beat.status === 'fulfilled' || beat.reason instanceof NotFoundError, String(rejection(beat)));
      }
    } finally {
      await store.close();
    }
  });

  it('a batch that fails fails for every heartbeat in it with the same error, and applies none of them', async () => {
    const url = await cluster.createDatabase('batched_failure');
    const admin = await connect(url);
    const clock = new ManualClock(Date.now());
    const store: PostgresStore = await openPostgresStore({ url, clock, staleAfterMs: STALE_AFTER_MS });
    try {
      await store.register(aVm({ id: 'quiet' }));
      clock.advance(STALE_AFTER_MS + 1);
      await store.sweep();
      const fresh = await Promise.all(['first', 'a', 'b'].map((id) => store.register(aVm({ id }))));
      // The database refuses to log a recovery: the batch holding quiet's heartbeat fails as a whole.
      await admin.query(`ALTER TABLE events ADD CONSTRAINT no_recoveries CHECK (type <> 'recovered') NOT VALID`);
      clock.advance(1000);

      // 'first' leaves at once; the other three wait for it and share the next statement.
      const [first, ...batched] = await Promise.allSettled(['first', 'quiet', 'a', 'b'].map((id) => store.heartbeat(id)));

      assert.equal(first.status, 'fulfilled');
      const errors = batched.map(rejection);
      for (const error of errors) assert.match((error as Error)?.message ?? 'answered', /no_recoveries/);
      assert.ok(errors.every((error) => error === errors[0]), "one error, the statement's, for all of them");
      const { rows } = await admin.query<{ id: string; last_seen: Date }>(`SELECT id, last_seen FROM vms WHERE id IN ('a', 'b') ORDER BY id`);
      assert.deepEqual(
        rows.map((row) => [row.id, row.last_seen.toISOString()]),
        fresh.slice(1).map((vm) => [vm.id, vm.lastSeen]),
        'no heartbeat of the failed batch is written',
      );
      assert.equal((await store.get('a'))?.lastSeen, fresh[1].lastSeen);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('while the database is away every heartbeat waiting in a batch is answered unavailable, and they work once it is back', async () => {
    const store = await openPostgresStore({ url: await cluster.createDatabase('batched_outage'), staleAfterMs: STALE_AFTER_MS });
    try {
      const ids = Array.from({ length: 20 }, (_, i) => `vm-${i}`);
      for (const id of ids) await store.register(aVm({ id }));
      cluster.stop();
      try {
        const answers = await Promise.allSettled(ids.map((id) => store.heartbeat(id)));
        for (const answer of answers) assert.ok(rejection(answer) instanceof UnavailableError, String(rejection(answer)));
      } finally {
        cluster.start();
      }
      await eventually(() => store.heartbeat('vm-0').then(() => true, () => false), 'heartbeats accepted again');
      const beats = await Promise.all(ids.map((id) => store.heartbeat(id)));
      assert.deepEqual(beats.map((beat) => beat.id), ids);
    } finally {
      await store.close();
    }
  });
});
