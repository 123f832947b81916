import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../domain/clock.js';
import { ConflictError, ForbiddenError, GoneError, NotFoundError, PreconditionFailedError } from '../../domain/errors.js';
import type { Vm, VmUpdate } from '../../domain/schemas.js';
import type { VmFields, VmRecord } from '../../domain/vm.js';
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
import { SQLITE_MIGRATIONS } from './migrations.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ":memory:". */
  file: string;
  clock: Clock;
  staleAfterMs: number;
  /** How many events the log keeps for watchers to resume from. */
  eventRetention?: number;
}

/** Opening failed: the message says which file and why, for the operator. */
export class StoreOpenError extends Error {}

interface VmRow {
  id: string;
  name: string;
  role: VmRecord['role'];
  status: VmRecord['status'];
  address: string;
  registered_by: string;
  services: string | null;
  metadata: string | null;
  registered_at: number;
  last_seen: number;
  revision: number;
  stale_announced: 0 | 1;
  owner: string | null;
}

interface EventRow {
  revision: number;
  type: EventType;
  at: number;
  vm: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

function toVm(row: VmRow): Vm {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    status: row.status,
    address: row.address,
    ...(row.services !== null && { services: JSON.parse(row.services) }),
    ...(row.metadata !== null && { metadata: JSON.parse(row.metadata) }),
    registeredBy: row.registered_by,
    registeredAt: iso(row.registered_at),
    lastSeen: iso(row.last_seen),
  };
}

const toRecord = (row: VmRow): VmRecord => ({
  ...toVm(row),
  ...(row.owner !== null && { owner: row.owner }),
  revision: row.revision,
});

const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

function openDatabase(file: string): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    // In WAL mode NORMAL survives any process crash (kill -9 included): a commit is in the
    // OS before the call returns. Only an OS crash or power cut can lose the last commits.
    db.pragma('synchronous = NORMAL');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`);
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SQLITE_MIGRATIONS.length) {
    throw new Error(`schema version ${version} is newer than this vm-registry understands (${SQLITE_MIGRATIONS.length}); upgrade vm-registry`);
  }
  db.transaction(() => {
    for (let next = version; next < SQLITE_MIGRATIONS.length; next++) {
      db.exec(SQLITE_MIGRATIONS[next]);
      db.pragma(`user_version = ${next + 1}`);
    }
  }).immediate();
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  let db: Database.Database;
  try {
    db = openDatabase(options.file);
  } catch (error) {
    throw new StoreOpenError(
      `cannot open the SQLite database at ${options.file}: ${(error as Error).message}. ` +
        'vm-registry will not start over a database it cannot read; fix or move the file, or point REGISTRY_DB elsewhere.',
    );
  }
  return new SqliteStore(db, options);
}

export class SqliteStore implements RegistryStore {
  readonly kind = 'sqlite';
  readonly staleAfterMs: number;
  private readonly clock: Clock;
  private readonly eventRetention: number;
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly changeListeners = new Set<() => void>();
  private readonly sql;

  constructor(
    private readonly db: Database.Database,
    options: SqliteStoreOptions,
  ) {
    this.clock = options.clock;
    this.staleAfterMs = options.staleAfterMs;
    this.eventRetention = options.eventRetention ?? 10_000;
    this.sql = {
      get: db.prepare<[string], VmRow>('SELECT * FROM vms WHERE id = ?'),
      insert: db.prepare(
        `INSERT INTO vms (id, name, role, status, address, registered_by, services, metadata, registered_at, last_seen, revision, stale_announced, owner)
         VALUES (@id, @name, @role, @status, @address, @registered_by, @services, @metadata, @registered_at, @last_seen, @revision, @stale_announced, @owner)`,
      ),
      replace: db.prepare(
        `UPDATE vms SET name = @name, role = @role, status = @status, address = @address, registered_by = @registered_by,
         services = @services, metadata = @metadata, last_seen = @last_seen, revision = @revision,
         stale_announced = @stale_announced WHERE id = @id`,
      ),
      remove: db.prepare('DELETE FROM vms WHERE id = ?'),
      heartbeat: db.prepare<{ now: number; id: string; owner: string | null }, { stale_announced: number }>(
        'UPDATE vms SET last_seen = @now WHERE id = @id AND (@owner IS NULL OR owner = @owner) RETURNING stale_announced',
      ),
      newlyStale: db.prepare<[number, number], VmRow>(
        `SELECT * FROM vms WHERE status = 'running' AND stale_announced = 0 AND last_seen < ? ORDER BY last_seen LIMIT ?`,
      ),
      dueForReaping: db.prepare<[number, number], VmRow>(
        'SELECT * FROM vms WHERE stale_announced = 1 AND last_seen < ? ORDER BY last_seen LIMIT ?',
      ),
      eventsAfter: db.prepare<[number, number], EventRow>(
        'SELECT revision, type, at, vm FROM events WHERE revision > ? ORDER BY revision LIMIT ?',
      ),
      oldestEvent: db.prepare<[], { revision: number | null }>('SELECT min(revision) AS revision FROM events'),
      revision: db.prepare<[], { value: number }>(`SELECT value FROM registry_state WHERE key = 'revision'`),
      nextRevision: db.prepare<[], { value: number }>(
        `UPDATE registry_state SET value = value + 1 WHERE key = 'revision' RETURNING value`,
      ),
      appendEvent: db.prepare('INSERT INTO events (revision, type, at, vm_id, vm) VALUES (?, ?, ?, ?, ?)'),
      trimEvents: db.prepare('DELETE FROM events WHERE revision <= ?'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM vms'),
    };
  }

  async register(vm: VmFields): Promise<VmRecord> {
    return this.write(() => {
      if (this.sql.get.get(vm.id)) throw new ConflictError(vm.id);
      return this.insert(vm, this.clock.now());
    });
  }

  async put(vm: VmFields, options: WriteOptions = {}): Promise<{ vm: VmRecord; created: boolean }> {
    return this.write(() => {
      const current = this.sql.get.get(vm.id);
      if (!current) {
        if (options.ifRevision !== undefined) throw new PreconditionFailedError(vm.id, options.ifRevision, 0);
        return { vm: this.insert(vm, this.clock.now()), created: true };
      }
      this.checkPrecondition(current, options);
      const now = this.clock.now();
      const revision = this.bump();
      const row: VmRow = {
        ...this.toRow(vm, revision),
        registered_at: current.registered_at,
        last_seen: now,
        owner: current.owner,
      };
      this.sql.replace.run(row);
      return { vm: this.record(row, 'updated', now), created: false };
    });
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const row = this.sql.get.get(id);
    return row && toRecord(row);
  }

  async list(filter: ListFilter = {}): Promise<Listing> {
    const cutoff = this.clock.now() - this.staleAfterMs;
    const read = this.db.transaction(() => {
      const rows = this.listStatement(filter).all({
        ...(filter.role !== undefined && { role: filter.role }),
        ...(filter.status !== undefined && { status: filter.status }),
        ...(filter.stale !== undefined && { cutoff }),
      }) as VmRow[];
      return { vms: rows.map(toRecord), revision: this.sql.revision.get()!.value };
    });
    return read.deferred();
  }

  async update(id: string, changes: VmUpdate, options: WriteOptions = {}): Promise<VmRecord> {
    return this.write(() => {
      const current = this.sql.get.get(id);
      if (!current) throw new NotFoundError(id);
      this.checkPrecondition(current, options);
      const now = this.clock.now();
      const revision = this.bump();
      const row: VmRow = {
        ...current,
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.status !== undefined && { status: changes.status }),
        ...(changes.address !== undefined && { address: changes.address }),
        ...(changes.services !== undefined && { services: json(changes.services) }),
        ...(changes.metadata !== undefined && { metadata: json(changes.metadata) }),
        // Only a move to running says the VM is alive; pausing or renaming a dead VM must not revive it.
        last_seen: changes.status === 'running' ? now : current.last_seen,
        revision,
      };
      // Still announced stale only while it is still running and no fresher than when announced.
      row.stale_announced = row.status === 'running' && row.last_seen === current.last_seen ? current.stale_announced : 0;
      this.sql.replace.run(row);
      return this.record(row, 'updated', now);
    });
  }

  async deregister(id: string, options: WriteOptions = {}): Promise<VmRecord> {
    return this.write(() => {
      const current = this.sql.get.get(id);
      if (!current) throw new NotFoundError(id);
      this.checkPrecondition(current, options);
      const now = this.clock.now();
      const revision = this.bump();
      this.sql.remove.run(id);
      return this.record({ ...current, revision }, 'deregistered', now);
    });
  }

  async import(vms: ImportedVm[]): Promise<ImportResult> {
    return this.write(() => {
      const now = this.clock.now();
      let created = 0;
      for (const vm of vms) {
        // Delete and insert rather than update: the replace statement keeps registered_at, an import must not.
        const replaced = this.sql.remove.run(vm.id).changes > 0;
        const row: VmRow = { ...this.toRow(vm, this.bump()), registered_at: vm.registeredAt, last_seen: vm.lastSeen };
        this.sql.insert.run(row);
        this.record(row, replaced ? 'updated' : 'registered', now);
        if (!replaced) created++;
      }
      return { created, replaced: vms.length - created, revision: this.sql.revision.get()!.value };
    });
  }

  async heartbeat(id: string, options: Pick<WriteOptions, 'owner'> = {}): Promise<Heartbeat> {
    const now = this.clock.now();
    // The hot path is one statement; only a VM the sweeper announced stale needs a transaction.
    const beat = this.sql.heartbeat.get({ now, id, owner: options.owner ?? null });
    if (!beat) {
      if (options.owner !== undefined && this.sql.get.get(id)) throw new ForbiddenError(id, options.owner);
      throw new NotFoundError(id);
    }
    if (beat.stale_announced === 1) {
      this.write(() => {
        const current = this.sql.get.get(id);
        if (current?.stale_announced !== 1) return;
        const row: VmRow = { ...current, revision: this.bump(), stale_announced: 0 };
        this.sql.replace.run(row);
        this.record(row, 'recovered', now);
      });
    }
    return { id, lastSeen: iso(now) };
  }

  async sweep(options: SweepOptions = {}): Promise<number> {
    const limit = options.limit ?? 1000;
    return this.write(() => {
      const now = this.clock.now();
      let written = 0;
      for (const current of this.sql.newlyStale.all(now - this.staleAfterMs, limit)) {
        const row: VmRow = { ...current, revision: this.bump(), stale_announced: 1 };
        this.sql.replace.run(row);
        this.record(row, 'stale', now);
        written++;
      }
      if (options.reapAfterMs !== undefined) {
        for (const current of this.sql.dueForReaping.all(now - this.staleAfterMs - options.reapAfterMs, limit)) {
          this.sql.remove.run(current.id);
          this.record({ ...current, revision: this.bump() }, 'reaped', now);
          written++;
        }
      }
      return written;
    });
  }

  async eventsSince(since: number, limit = 1000): Promise<RegistryEvent[]> {
    const read = this.db.transaction(() => {
      const current = this.sql.revision.get()!.value;
      if (since > current) {
        throw new GoneError(`revision ${since} is ahead of this registry (at ${current}); list again, then watch from its revision`);
      }
      const oldest = this.sql.oldestEvent.get()!.revision ?? current + 1;
      if (since < oldest - 1) {
        throw new GoneError(
          `revision ${since} is older than the event log keeps (it starts after ${oldest - 1}); list again, then watch from its revision`,
        );
      }
      return this.sql.eventsAfter.all(since, limit);
    });
    return read.deferred().map((row) => ({ type: row.type, revision: row.revision, at: iso(row.at), vm: JSON.parse(row.vm) }));
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async revision(): Promise<number> {
    return this.sql.revision.get()!.value;
  }

  async count(): Promise<number> {
    return this.sql.count.get()!.n;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    // Folding the WAL back leaves one self-contained file behind for backups and copies.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  private write<T>(change: () => T): T {
    const before = this.sql.revision.get()!.value;
    const result = this.db.transaction(change).immediate();
    if (this.changeListeners.size > 0 && this.sql.revision.get()!.value !== before) {
      for (const listener of this.changeListeners) listener();
    }
    return result;
  }

  private insert(vm: VmFields, now: number): VmRecord {
    const row: VmRow = { ...this.toRow(vm, this.bump()), registered_at: now, last_seen: now };
    this.sql.insert.run(row);
    return this.record(row, 'registered', now);
  }

  private toRow(vm: VmFields, revision: number): Omit<VmRow, 'registered_at' | 'last_seen'> {
    return {
      id: vm.id,
      name: vm.name,
      role: vm.role,
      status: vm.status,
      address: vm.address,
      registered_by: vm.registeredBy,
      services: json(vm.services),
      metadata: json(vm.metadata),
      revision,
      stale_announced: 0,
      owner: vm.owner ?? null,
    };
  }

  /** Appends the change to the event log inside the caller's transaction. */
  private record(row: VmRow, type: EventType, at: number): VmRecord {
    this.sql.appendEvent.run(row.revision, type, at, row.id, JSON.stringify(toVm(row)));
    this.sql.trimEvents.run(row.revision - this.eventRetention);
    return toRecord(row);
  }

  private bump(): number {
    return this.sql.nextRevision.get()!.value;
  }

  private checkPrecondition(current: VmRow, options: WriteOptions): void {
    if (options.owner !== undefined && current.owner !== options.owner) throw new ForbiddenError(current.id, options.owner);
    if (options.ifRevision !== undefined && options.ifRevision !== current.revision) {
      throw new PreconditionFailedError(current.id, options.ifRevision, current.revision);
    }
  }

  private listStatement(filter: ListFilter): Database.Statement {
    const key = `${filter.role !== undefined}|${filter.status !== undefined}|${filter.stale}`;
    let statement = this.listStatements.get(key);
    if (!statement) {
      const where = ['1 = 1'];
      if (filter.role !== undefined) where.push('role = @role');
      if (filter.status !== undefined) where.push('status = @status');
      if (filter.stale === true) where.push(`(status = 'running' AND last_seen < @cutoff)`);
      if (filter.stale === false) where.push(`NOT (status = 'running' AND last_seen < @cutoff)`);
      statement = this.db.prepare(
        `SELECT * FROM vms WHERE ${where.join(' AND ')} ORDER BY registered_at DESC, id`,
      );
      this.listStatements.set(key, statement);
    }
    return statement;
  }
}
