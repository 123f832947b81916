import pg from 'pg';
import type { Clock } from '../../domain/clock.js';
import { ConflictError, ForbiddenError, NotFoundError } from '../../domain/errors.js';
import type { Vm, VmUpdate } from '../../domain/schemas/vm.js';
import { applyHealth, withHealth, type CheckedService, type HealthTarget } from '../../domain/service-health.js';
import type { ServiceHealth } from '../../domain/schemas/service-health.js';
import { isStale, type VmFields, type VmRecord } from '../../domain/vm.js';
import type {
  CensusLine,
  FeedListing,
  Heartbeat,
  ImportedVm,
  ImportResult,
  JsonListing,
  JsonVm,
  ListFilter,
  Listing,
  MirrorLag,
  RegistryStore,
  SweepOptions,
  WriteOptions,
} from '../store.js';
import {
  ChangeListeners,
  checkCreate,
  checkNotAhead,
  checkRetained,
  checkWrite,
  DEFAULT_EVENT_RETENTION,
  DEFAULT_PAGE,
  recordOf,
} from '../rules.js';
import { ChangeListener } from './change-listener.js';
import { HeartbeatBatch, type BeatAnswer } from './heartbeat-batch.js';
import { redactDatabaseUrl } from './database-url.js';
import { connectionTo, Database, openPool } from './pool.js';
import { migrate } from './migrate.js';
import { ReplicaMirror } from './replica-mirror.js';
import { SQL, SWEEP_LOCK, type LockedRow, type LoggedRow, type StoredVm } from './statements.js';
import type { StoreLog } from './store-log.js';
import type { EventType, RegistryEvent } from '../../domain/schemas/events.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  staleAfterMs: number;
  /** How many events the log keeps for watchers to resume from. */
  eventRetention?: number;
  /** Connections in this replica's pool (one more is kept for LISTEN). */
  poolMax?: number;
  log?: StoreLog;
  /** REGISTRY_HEALTH_CHECKS=on: services with a healthPath carry their health (see withHealth). */
  healthChecks?: boolean;
  /**
   * Tests only: take the time from this clock instead of the database's, so that a test can
   * move it. Left unset, every statement uses the database clock and replicas agree.
   */
  clock?: Clock;
}

const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

/**
 * Connects, brings the schema up to date and starts listening for changes. Fails with a
 * message naming the database (never its password) when any of that is impossible.
 */
export const openPostgresStore = (options: PostgresStoreOptions): Promise<PostgresStore> => PostgresStore.open(options);

export class PostgresStore implements RegistryStore {
  readonly kind = 'postgres';
  readonly staleAfterMs: number;
  private readonly eventRetention: number;
  private readonly clock: Clock | undefined;
  private readonly healthChecks: boolean;
  private readonly changeListeners = new ChangeListeners();
  private listener: ChangeListener | undefined;
  /** This replica's copy of the registry, which every read answers from. */
  private readonly mirror: ReplicaMirror;
  private closed = false;

  private readonly db: Database;
  // Named, so each connection parses and plans the hot path once.
  private readonly heartbeats = new HeartbeatBatch(async (ids, owners) =>
    (await this.db.query<BeatAnswer>(SQL.heartbeats, [...this.writeParameters(), ids, owners], 'heartbeats')).rows);

  private constructor(
    pool: pg.Pool,
    options: PostgresStoreOptions,
  ) {
    this.db = new Database(pool);
    this.staleAfterMs = options.staleAfterMs;
    this.eventRetention = options.eventRetention ?? DEFAULT_EVENT_RETENTION;
    this.clock = options.clock;
    this.healthChecks = options.healthChecks ?? false;
    this.mirror = new ReplicaMirror({
      db: this.db,
      staleAfterMs: this.staleAfterMs,
      eventRetention: this.eventRetention,
      clock: options.clock,
      log: options.log,
      applied: () => this.changeListeners.notify(),
    });
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const connection = connectionTo(options.url);
    const pool = openPool(connection, options.poolMax ?? 10, options.log);
    let store: PostgresStore | undefined;
    try {
      const client = await pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
      store = new PostgresStore(pool, options);
      const { mirror } = store;
      // Listening before the mirror's snapshot is taken: whatever commits after it is heard of.
      store.listener = await ChangeListener.start(
        // Named by process, so that an operator (or a test) can tell each replica's LISTEN connection apart.
        { ...connection, application_name: `vm-registry listen ${process.pid}`, connectionTimeoutMillis: 5000 },
        {
          changed: (payload) => mirror.changed(payload),
          heartbeat: (payload) => mirror.heartbeatHeard(payload),
          lost: () => mirror.disconnected(),
          restored: () => mirror.reconnected(),
        },
        options.log,
      );
      await mirror.start();
      return store;
    } catch (error) {
      await store?.listener?.close();
      await store?.mirror.close();
      await pool.end().catch(() => undefined);
      const reason = (error as Error).message || String((error as { code?: unknown }).code ?? error);
      throw new Error(`cannot open the PostgreSQL database at ${redactDatabaseUrl(options.url)}: ${reason}`);
    }
  }

  async register(vm: VmFields): Promise<VmRecord> {
    return this.applied(await this.db.transaction((client) => this.insert(client, vm)));
  }

  async put(vm: VmFields, options: WriteOptions = {}): Promise<{ vm: VmRecord; created: boolean }> {
    for (;;) {
      try {
        const put = await this.db.transaction(async (client) => {
          const current = await this.lock(client, vm.id);
          if (!current) {
            checkCreate(vm.id, options);
            return { row: await this.insert(client, vm), created: true };
          }
          checkWrite(vm.id, current, options);
          // A replacement keeps the owner: an admin's PUT must not take a VM from its token.
          const previous = current.address === vm.address ? (current.services ?? undefined) : undefined;
          const { rows } = await client.query<LoggedRow>(SQL.replace, this.vmParameters(vm, previous));
          return { row: rows[0], created: false };
        });
        return { vm: await this.applied(put.row), created: put.created };
      } catch (error) {
        // Another writer created it between our look and our insert: it is a replace now.
        if (!(error instanceof ConflictError)) throw error;
      }
    }
  }

  async get(id: string): Promise<VmRecord | undefined> {
    return this.mirror.current().get(id);
  }

  async getJson(id: string): Promise<JsonVm | undefined> {
    return this.mirror.current().getJson(id);
  }

  async list(filter: ListFilter = {}): Promise<Listing> {
    return this.mirror.current().list(filter);
  }

  async feedListing(): Promise<FeedListing> {
    return this.mirror.current().feedListing();
  }

  async listJson(filter: ListFilter = {}): Promise<JsonListing> {
    return this.mirror.current().listJson(filter);
  }

  /** What this replica holds even while it is not current: a scrape during an outage says what the process knows, and vm_registry_mirror_current says how far to trust it. */
  async census(): Promise<CensusLine[]> {
    return this.mirror.reads.census();
  }

  mirrorLag(): MirrorLag {
    return this.mirror.lag();
  }

  async update(id: string, changes: VmUpdate, options: WriteOptions = {}): Promise<VmRecord> {
    const updated = await this.db.transaction(async (client) => {
      const current = await this.lockExisting(client, id, options);
      const moved = changes.address !== undefined && changes.address !== current.address;
      const previous = current.services ?? undefined;
      const services = changes.services ?? (moved ? previous : undefined);
      const { rows } = await client.query<LoggedRow>(SQL.update, [
        ...this.writeParameters(),
        id,
        changes.name ?? null,
        changes.status ?? null,
        changes.address ?? null,
        json(withHealth(services, moved ? undefined : previous, this.healthChecks)),
        json(changes.metadata),
      ]);
      return rows[0];
    });
    return this.applied(updated);
  }

  async deregister(id: string, options: WriteOptions = {}): Promise<VmRecord> {
    const removed = await this.db.transaction(async (client) => {
      await this.lockExisting(client, id, options);
      const { rows } = await client.query<LoggedRow>(SQL.remove, [...this.writeParameters(), id]);
      return rows[0];
    });
    return this.applied(removed);
  }

  async import(vms: ImportedVm[]): Promise<ImportResult> {
    const result = await this.db.transaction(async (client) => {
      let created = 0;
      await client.query(SQL.lockForImport, [vms.map((vm) => vm.id)]);
      for (const vm of vms) {
        // Delete and insert rather than replace: the replace statement keeps registered_at, an import must not.
        const replaced = ((await client.query(SQL.removeForImport, [vm.id])).rowCount ?? 0) > 0;
        await this.insert(client, vm, { registeredAt: new Date(vm.registeredAt), lastSeen: new Date(vm.lastSeen), replaced });
        if (!replaced) created++;
      }
      const { rows } = await client.query<{ value: number }>(SQL.revision);
      return { created, replaced: vms.length - created, revision: rows[0].value };
    });
    await this.mirror.reached(result.revision);
    return result;
  }

  async recordHealth(id: string, target: HealthTarget, health: ServiceHealth): Promise<VmRecord | undefined> {
    const recorded = await this.db.transaction(async (client) => {
      const current = await this.lock(client, id);
      const services = current && applyHealth(current.address, current.services ?? undefined, target, health);
      if (!services) return undefined;
      const { rows } = await client.query<LoggedRow>(SQL.setServices, [...this.writeParameters(), id, json(services)]);
      return rows[0];
    });
    return recorded && this.applied(recorded);
  }

  async heartbeat(id: string, options: Pick<WriteOptions, 'owner'> = {}): Promise<Heartbeat> {
    const owner = options.owner ?? null;
    const { seen, rev } = await this.heartbeats.beat(id, owner);
    if (seen === null || rev === null) {
      if (owner !== null && (await this.db.query(SQL.exists, [id])).rows.length > 0) throw new ForbiddenError(id, owner);
      throw new NotFoundError(id);
    }
    // A recovery is a change (a new revision), and a change of this VM made elsewhere may not have arrived yet.
    await this.mirror.reached(rev);
    this.mirror.beat(id, rev, Date.parse(seen));
    return { id, lastSeen: seen };
  }

  async sweep(options: SweepOptions = {}): Promise<number> {
    const limit = options.limit ?? DEFAULT_PAGE;
    const { written, revision } = await this.db.transaction(async (client) => {
      // The lock ends with this transaction: whichever replica gets it sweeps this tick, so a
      // replica that dies simply stops competing, and the others carry on at their next tick.
      const { rows } = await client.query<{ sweeper: boolean }>(SQL.sweeper, [SWEEP_LOCK]);
      if (!rows[0].sweeper) return { written: 0, revision: 0 };
      const stale = await client.query(SQL.announceStale, [...this.writeParameters(), this.staleAfterMs, limit]);
      let written = stale.rowCount ?? 0;
      if (options.reapAfterMs !== undefined) {
        const reaped = await client.query(SQL.reap, [...this.writeParameters(), this.staleAfterMs + options.reapAfterMs, limit]);
        written += reaped.rowCount ?? 0;
      }
      return { written, revision: written === 0 ? 0 : (await client.query<{ value: number }>(SQL.revision)).rows[0].value };
    });
    await this.mirror.reached(revision);
    return written;
  }

  /** From memory when the newest events are asked for (the change feed's case), else from the log, up to the mirror's revision. */
  async eventsSince(since: number, limit = DEFAULT_PAGE): Promise<RegistryEvent[]> {
    // Like every read: while the mirror is not known to be current its watchers wait for the reload, which tells them.
    this.mirror.current();
    // A watcher moving from a replica that is further along (its Last-Event-ID) waits for this
    // one to get there rather than being told to list again; only a revision the database
    // has not reached either is ahead of the registry.
    if (since > this.mirror.appliedRevision && since <= (await this.databaseRevision())) await this.mirror.reached(since);
    const current = this.mirror.appliedRevision;
    checkNotAhead(since, current);
    if (since === current) return [];
    const recent = this.mirror.recentAfter(since, limit);
    if (recent) return recent;
    const { rows } = await this.db.query<{
      registry_revision: number;
      oldest: number | null;
      revision: number | null;
      type: EventType;
      at: string;
      vm: StoredVm;
    }>(SQL.events, [since, limit, current]);
    checkRetained(since, rows[0].oldest, current);
    return rows
      .filter((row) => row.revision !== null)
      .map((row) => ({ type: row.type, revision: row.revision!, at: row.at, vm: this.asOf(row.vm, Date.parse(row.at)) }));
  }

  onChange(listener: () => void): () => void {
    return this.changeListeners.add(listener);
  }

  /** The revision this replica's mirror, and so every read of it, reflects. */
  async revision(): Promise<number> {
    return this.mirror.appliedRevision;
  }

  /** From the mirror; a 503 while it is not current, so that /health takes a reloading replica out of a load balancer. */
  async count(): Promise<number> {
    return this.mirror.current().mirror.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener?.close();
    await this.mirror.close();
    await this.db.end();
  }

  private async databaseRevision(): Promise<number> {
    return (await this.db.query<{ value: number }>(SQL.revision)).rows[0].value;
  }

  /** A write is answered once this replica's mirror has it: a read here right after it sees it. */
  private async applied(row: LoggedRow): Promise<VmRecord> {
    await this.mirror.wrote({ ...row.event, at: row.at.getTime() });
    return this.recordOf(row);
  }

  /** The VM as it stood at `at` (ms, the database clock's): stale or not then. */
  private asOf(vm: StoredVm, at: number): Vm {
    return { ...vm, stale: isStale(vm, at, this.staleAfterMs) };
  }

  private recordOf({ event, at }: LoggedRow): VmRecord {
    return recordOf({ ...event.vm, stale: isStale(event.vm, at.getTime(), this.staleAfterMs) }, event.owner, event.revision);
  }

  private fixedNow(): Date | null {
    return this.clock ? new Date(this.clock.now()) : null;
  }

  private writeParameters(): [Date | null, number] {
    return [this.fixedNow(), this.eventRetention];
  }

  /** `previous`: the services of the entry replaced at the same address, whose health carries over. */
  private vmParameters(vm: VmFields, previous?: CheckedService[]): unknown[] {
    const { id, name, role, status, address, registeredBy, metadata } = vm;
    const services = withHealth(vm.services, previous, this.healthChecks);
    return [...this.writeParameters(), id, name, role, status, address, registeredBy, json(services), json(metadata)];
  }

  /** Creates the entry; ConflictError (and so a rollback of the revision it took) if the id exists. */
  private async insert(
    client: pg.PoolClient,
    vm: VmFields,
    imported?: { registeredAt: Date; lastSeen: Date; replaced: boolean },
  ): Promise<LoggedRow> {
    const { rows } = await client.query<LoggedRow>(SQL.insert, [
      ...this.vmParameters(vm),
      vm.owner ?? null,
      imported?.registeredAt ?? null,
      imported?.lastSeen ?? null,
      imported?.replaced ? 'updated' : 'registered',
    ]);
    if (rows.length === 0) throw new ConflictError(vm.id);
    return rows[0];
  }

  /** Locks the VM's row for the rest of the transaction; answers what preconditions need, if it exists. */
  private async lock(client: pg.PoolClient, id: string): Promise<LockedRow | undefined> {
    const { rows } = await client.query<LockedRow>(SQL.lock, [id]);
    return rows[0];
  }

  private async lockExisting(client: pg.PoolClient, id: string, options: WriteOptions): Promise<LockedRow> {
    const current = await this.lock(client, id);
    if (!current) throw new NotFoundError(id);
    checkWrite(id, current, options);
    return current;
  }
}
