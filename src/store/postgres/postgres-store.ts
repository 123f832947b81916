import pg from 'pg';
import type { Clock } from '../../domain/clock.js';
import { ConflictError, ForbiddenError, GoneError, NotFoundError, PreconditionFailedError } from '../../domain/errors.js';
import type { Vm, VmUpdate } from '../../domain/schemas.js';
import { applyHealth, matchesHealth, withHealth, type CheckedService, type HealthTarget, type ServiceHealth } from '../../domain/health.js';
import { isStale, type VmFields, type VmRecord } from '../../domain/vm.js';
import type {
  EventType,
  Heartbeat,
  ImportedVm,
  ImportResult,
  ListFilter,
  Listing,
  RegistryEvent,
  RegistryStore,
  SweepOptions,
  WriteOptions,
} from '../store.js';
import { ChangeListener } from './change-listener.js';
import { redactDatabaseUrl } from './database-url.js';
import { migrate } from './migrate.js';
import { isUnavailable, unavailableOr } from './unavailable.js';

/** What the store tells the operator about its connections; pino's logger fits. */
export interface StoreLog {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}

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

// Any fixed number, the same in every replica: whoever holds it this tick is the sweeper.
const SWEEP_LOCK = 0x76_6d_72_02;

// Revisions are bigint; as JavaScript numbers they stay exact up to 2^53.
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format),
} as pg.CustomTypesConfig;

/** The VM as registry_vm() builds it: the API's fields but stale, which depends on when it is asked. */
type StoredVm = Omit<Vm, 'stale'>;

/** A change as registry_log answers it (its revision, the VM as the event log holds it, and its owner), and when it happened. */
interface LoggedRow {
  event: { revision: number; vm: StoredVm; owner: string | null };
  at: Date;
}

/** A VM row as reads answer it, judged stale or not by the database clock. */
interface VmRow {
  vm: StoredVm;
  owner: string | null;
  revision: number;
  stale: boolean;
}

/** A locked row: what write preconditions check, and what a service's health carries over from. */
interface Locked {
  revision: number;
  owner: string | null;
  address: string;
  services: CheckedService[] | null;
}

const toRecord = ({ vm, owner, revision, stale }: VmRow): VmRecord => ({ ...vm, stale, ...(owner !== null && { owner }), revision });
const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

// Every write statement takes the same first parameters: $1 the fixed time (NULL: the
// database's), $2 the event retention.
const NOW = 'registry_now($1::timestamptz)';
const milliseconds = (parameter: string) => `${parameter}::double precision * interval '1 millisecond'`;
/** The stale rule in SQL, for the row v, at `now`, with the threshold in ms in `staleAfter`. */
const staleSql = (now: string, staleAfter: string) => `(v.status = 'running' AND v.last_seen < ${now} - ${milliseconds(staleAfter)})`;
/** What every write answers: its logged change and the time the change took (see recordOf). */
const LOGGED = (kind: string, revision: string) => `registry_log(v, ${kind}, ${revision}, ${NOW}, $2) AS event, ${NOW} AS at`;

const SQL = {
  // Every change locks its row before it takes a revision: an UPDATE that ran into a concurrent
  // change of its row would evaluate its SET list again, and take a second revision.
  lock: 'SELECT revision, owner, address, services FROM vms WHERE id = $1 FOR UPDATE',
  insert: `
    INSERT INTO vms AS v (id, name, role, status, address, registered_by, services, metadata, owner, registered_at, last_seen, revision)
    SELECT $3, $4, $5, $6, $7, $8, $9::json, $10::json, $11, coalesce($12, t.now), coalesce($13, t.now), registry_next_revision()
    FROM (SELECT ${NOW} AS now) t
    ON CONFLICT (id) DO NOTHING
    RETURNING ${LOGGED('$14', 'v.revision')}`,
  replace: `
    UPDATE vms AS v SET name = $4, role = $5, status = $6, address = $7, registered_by = $8, services = $9::json,
      metadata = $10::json, last_seen = ${NOW}, revision = registry_next_revision(), stale_announced = false
    WHERE id = $3
    RETURNING ${LOGGED("'updated'", 'v.revision')}`,
  update: `
    UPDATE vms AS v SET
      name = coalesce($4::text, name),
      status = coalesce($5::text, status),
      address = coalesce($6::text, address),
      services = coalesce($7::json, services),
      metadata = coalesce($8::json, metadata),
      -- Only a move to running says the VM is alive; pausing or renaming a dead VM must not revive it.
      last_seen = CASE WHEN $5::text = 'running' THEN ${NOW} ELSE last_seen END,
      -- Still announced stale only while nothing made it running afresh.
      stale_announced = stale_announced AND $5::text IS NULL,
      revision = registry_next_revision()
    WHERE id = $3
    RETURNING ${LOGGED("'updated'", 'v.revision')}`,
  setServices: `
    UPDATE vms AS v SET services = $4::json, revision = registry_next_revision() WHERE id = $3
    RETURNING ${LOGGED("'updated'", 'v.revision')}`,
  remove: `
    DELETE FROM vms AS v WHERE id = $3
    RETURNING ${LOGGED("'deregistered'", 'registry_next_revision()')}`,
  removeForImport: 'DELETE FROM vms WHERE id = $1',
  heartbeat: 'SELECT registry_heartbeat($3, $1::timestamptz, $2, $4) AS last_seen',
  sweeper: 'SELECT pg_try_advisory_xact_lock($1) AS sweeper',
  // The due rows are locked first, skipping any a writer holds, so that the counter's lock is
  // always taken after the rows' as in every other write: no deadlock.
  announceStale: `
    WITH due AS MATERIALIZED (
      SELECT id FROM vms
      WHERE status = 'running' AND NOT stale_announced AND last_seen < ${NOW} - ${milliseconds('$3')}
      ORDER BY last_seen LIMIT $4
      FOR UPDATE SKIP LOCKED
    )
    UPDATE vms AS v SET stale_announced = true, revision = registry_next_revision() FROM due WHERE v.id = due.id
    RETURNING registry_log(v, 'stale', v.revision, ${NOW}, $2) AS event`,
  reap: `
    WITH due AS MATERIALIZED (
      SELECT id FROM vms
      WHERE stale_announced AND last_seen < ${NOW} - ${milliseconds('$3')}
      ORDER BY last_seen LIMIT $4
      FOR UPDATE SKIP LOCKED
    )
    DELETE FROM vms AS v USING due WHERE v.id = due.id
    RETURNING registry_log(v, 'reaped', registry_next_revision(), ${NOW}, $2) AS event`,
  get: `SELECT registry_vm(v) AS vm, v.owner, v.revision, ${staleSql(NOW, '$2')} AS stale FROM vms v WHERE v.id = $3`,
  // One statement, so the VMs and the revision come from one snapshot: a client can watch
  // from that revision and miss nothing.
  list: `
    SELECT s.value AS registry_revision, l.vm, l.owner, l.revision, l.stale
    FROM registry_state s
    LEFT JOIN LATERAL (
      SELECT registry_vm(v) AS vm, v.owner, v.revision, v.registered_at, v.id, ${staleSql(NOW, '$5')} AS stale
      FROM vms v
      WHERE ($2::text IS NULL OR v.role = $2)
        AND ($3::text IS NULL OR v.status = $3)
        AND ($4::boolean IS NULL OR ${staleSql(NOW, '$5')} = $4)
    ) l ON true
    WHERE s.key = 'revision'
    ORDER BY l.registered_at DESC, l.id`,
  events: `
    SELECT s.value AS registry_revision, (SELECT min(revision) FROM events) AS oldest,
      e.revision, e.type, registry_iso(e.at) AS at, e.vm
    FROM registry_state s
    LEFT JOIN LATERAL (SELECT * FROM events WHERE revision > $1 ORDER BY revision LIMIT $2) e ON true
    WHERE s.key = 'revision'
    ORDER BY e.revision`,
  revision: `SELECT value FROM registry_state WHERE key = 'revision'`,
  count: 'SELECT count(*)::integer AS n FROM vms',
};

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
  private readonly changeListeners = new Set<() => void>();
  private listener: ChangeListener | undefined;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    options: PostgresStoreOptions,
  ) {
    this.staleAfterMs = options.staleAfterMs;
    this.eventRetention = options.eventRetention ?? 10_000;
    this.clock = options.clock;
    this.healthChecks = options.healthChecks ?? false;
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const connection = {
      connectionString: options.url,
      types,
      application_name: 'vm-registry',
      // Notices a database that vanished without closing the connection (a dead host), eventually.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
    const pool = new pg.Pool({
      ...connection,
      max: options.poolMax ?? 10,
      // A request waits at most this long for a connection, so an unreachable database is a prompt 503.
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
    });
    // Idle connections die with the database; without a listener that would end the process.
    pool.on('error', (error) =>
      options.log?.warn({ reason: error.message }, 'an idle PostgreSQL connection failed; the pool replaces it'),
    );
    try {
      const client = await pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
      const store = new PostgresStore(pool, options);
      const notify = () => {
        for (const listener of store.changeListeners) listener();
      };
      store.listener = await ChangeListener.start({ ...connection, connectionTimeoutMillis: 5000 }, notify, options.log);
      return store;
    } catch (error) {
      await pool.end().catch(() => undefined);
      const reason = (error as Error).message || String((error as { code?: unknown }).code ?? error);
      throw new Error(`cannot open the PostgreSQL database at ${redactDatabaseUrl(options.url)}: ${reason}`);
    }
  }

  async register(vm: VmFields): Promise<VmRecord> {
    return this.transaction((client) => this.insert(client, vm));
  }

  async put(vm: VmFields, options: WriteOptions = {}): Promise<{ vm: VmRecord; created: boolean }> {
    for (;;) {
      try {
        return await this.transaction(async (client) => {
          const current = await this.lock(client, vm.id);
          if (!current) {
            if (options.ifRevision !== undefined) throw new PreconditionFailedError(vm.id, options.ifRevision, 0);
            return { vm: await this.insert(client, vm), created: true };
          }
          this.checkPrecondition(vm.id, current, options);
          // A replacement keeps the owner: an admin's PUT must not take a VM from its token.
          const previous = current.address === vm.address ? (current.services ?? undefined) : undefined;
          const { rows } = await client.query<LoggedRow>(SQL.replace, this.vmParameters(vm, previous));
          return { vm: this.recordOf(rows[0]), created: false };
        });
      } catch (error) {
        // Another writer created it between our look and our insert: it is a replace now.
        if (!(error instanceof ConflictError)) throw error;
      }
    }
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const { rows } = await this.query<VmRow>(SQL.get, [this.fixedNow(), this.staleAfterMs, id]);
    return rows[0] && toRecord(rows[0]);
  }

  async list(filter: ListFilter = {}): Promise<Listing> {
    const { rows } = await this.query<VmRow & { registry_revision: number }>(SQL.list, [
      this.fixedNow(),
      filter.role ?? null,
      filter.status ?? null,
      filter.stale ?? null,
      this.staleAfterMs,
    ]);
    return {
      // An empty registry answers one row, with the revision and no VM.
      vms: rows.filter((row) => row.vm !== null && matchesHealth(row.vm.services, filter)).map(toRecord),
      revision: rows[0].registry_revision,
    };
  }

  async update(id: string, changes: VmUpdate, options: WriteOptions = {}): Promise<VmRecord> {
    return this.transaction(async (client) => {
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
      return this.recordOf(rows[0]);
    });
  }

  async deregister(id: string, options: WriteOptions = {}): Promise<VmRecord> {
    return this.transaction(async (client) => {
      await this.lockExisting(client, id, options);
      const { rows } = await client.query<LoggedRow>(SQL.remove, [...this.writeParameters(), id]);
      return this.recordOf(rows[0]);
    });
  }

  async import(vms: ImportedVm[]): Promise<ImportResult> {
    return this.transaction(async (client) => {
      let created = 0;
      for (const vm of vms) {
        // Delete and insert rather than replace: the replace statement keeps registered_at, an import must not.
        const replaced = ((await client.query(SQL.removeForImport, [vm.id])).rowCount ?? 0) > 0;
        await this.insert(client, vm, { registeredAt: new Date(vm.registeredAt), lastSeen: new Date(vm.lastSeen), replaced });
        if (!replaced) created++;
      }
      const { rows } = await client.query<{ value: number }>(SQL.revision);
      return { created, replaced: vms.length - created, revision: rows[0].value };
    });
  }

  async recordHealth(id: string, target: HealthTarget, health: ServiceHealth): Promise<VmRecord | undefined> {
    return this.transaction(async (client) => {
      const current = await this.lock(client, id);
      const services = current && applyHealth(current.address, current.services ?? undefined, target, health);
      if (!services) return undefined;
      const { rows } = await client.query<LoggedRow>(SQL.setServices, [...this.writeParameters(), id, json(services)]);
      return this.recordOf(rows[0]);
    });
  }

  async heartbeat(id: string, options: Pick<WriteOptions, 'owner'> = {}): Promise<Heartbeat> {
    const owner = options.owner ?? null;
    // Named, so each connection parses and plans the hot path once.
    const { rows } = await this.query<{ last_seen: string | null }>(SQL.heartbeat, [...this.writeParameters(), id, owner], 'heartbeat');
    if (rows[0].last_seen === null) {
      if (owner !== null && (await this.get(id))) throw new ForbiddenError(id, owner);
      throw new NotFoundError(id);
    }
    return { id, lastSeen: rows[0].last_seen };
  }

  async sweep(options: SweepOptions = {}): Promise<number> {
    const limit = options.limit ?? 1000;
    return this.transaction(async (client) => {
      // The lock ends with this transaction: whichever replica gets it sweeps this tick, so a
      // replica that dies simply stops competing, and the others carry on at their next tick.
      const { rows } = await client.query<{ sweeper: boolean }>(SQL.sweeper, [SWEEP_LOCK]);
      if (!rows[0].sweeper) return 0;
      const stale = await client.query(SQL.announceStale, [...this.writeParameters(), this.staleAfterMs, limit]);
      let written = stale.rowCount ?? 0;
      if (options.reapAfterMs !== undefined) {
        const reaped = await client.query(SQL.reap, [...this.writeParameters(), this.staleAfterMs + options.reapAfterMs, limit]);
        written += reaped.rowCount ?? 0;
      }
      return written;
    });
  }

  async eventsSince(since: number, limit = 1000): Promise<RegistryEvent[]> {
    const { rows } = await this.query<{
      registry_revision: number;
      oldest: number | null;
      revision: number | null;
      type: EventType;
      at: string;
      vm: StoredVm;
    }>(SQL.events, [since, limit]);
    const current = rows[0].registry_revision;
    if (since > current) {
      throw new GoneError(`revision ${since} is ahead of this registry (at ${current}); list again, then watch from its revision`);
    }
    const oldest = rows[0].oldest ?? current + 1;
    if (since < oldest - 1) {
      throw new GoneError(
        `revision ${since} is older than the event log keeps (it starts after ${oldest - 1}); list again, then watch from its revision`,
      );
    }
    return rows
      .filter((row) => row.revision !== null)
      .map((row) => ({ type: row.type, revision: row.revision!, at: row.at, vm: this.asOf(row.vm, Date.parse(row.at)) }));
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async revision(): Promise<number> {
    const { rows } = await this.query<{ value: number }>(SQL.revision);
    return rows[0].value;
  }

  async count(): Promise<number> {
    const { rows } = await this.query<{ n: number }>(SQL.count);
    return rows[0].n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener?.close();
    await this.pool.end();
  }

  /** The VM as it stood at `at` (ms, the database clock's): stale or not then. */
  private asOf(vm: StoredVm, at: number): Vm {
    return { ...vm, stale: isStale(vm, at, this.staleAfterMs) };
  }

  private recordOf({ event, at }: LoggedRow): VmRecord {
    return toRecord({ ...event, stale: isStale(event.vm, at.getTime(), this.staleAfterMs) });
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
  ): Promise<VmRecord> {
    const { rows } = await client.query<LoggedRow>(SQL.insert, [
      ...this.vmParameters(vm),
      vm.owner ?? null,
      imported?.registeredAt ?? null,
      imported?.lastSeen ?? null,
      imported?.replaced ? 'updated' : 'registered',
    ]);
    if (rows.length === 0) throw new ConflictError(vm.id);
    return this.recordOf(rows[0]);
  }

  /** Locks the VM's row for the rest of the transaction; answers what preconditions need, if it exists. */
  private async lock(client: pg.PoolClient, id: string): Promise<Locked | undefined> {
    const { rows } = await client.query<Locked>(SQL.lock, [id]);
    return rows[0];
  }

  private async lockExisting(client: pg.PoolClient, id: string, options: WriteOptions): Promise<Locked> {
    const current = await this.lock(client, id);
    if (!current) throw new NotFoundError(id);
    this.checkPrecondition(id, current, options);
    return current;
  }

  private checkPrecondition(id: string, current: Locked, options: WriteOptions): void {
    if (options.owner !== undefined && current.owner !== options.owner) throw new ForbiddenError(id, options.owner);
    if (options.ifRevision !== undefined && options.ifRevision !== current.revision) {
      throw new PreconditionFailedError(id, options.ifRevision, current.revision);
    }
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>({ text, values, name });
    } catch (error) {
      throw unavailableOr(error);
    }
  }

  /**
   * Runs `work` in one transaction on one connection. Any failure rolls it back, which also
   * returns the revision it may have taken; a connection that failed leaves the pool.
   */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw unavailableOr(error);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (isUnavailable(error)) broken = error as Error;
      else await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw unavailableOr(error);
    } finally {
      client.release(broken);
    }
  }
}
