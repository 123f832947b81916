import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../domain/clock.js';
import { ConflictError, ForbiddenError, GoneError, NotFoundError, PreconditionFailedError } from '../../domain/errors.js';
import type { Vm, VmUpdate } from '../../domain/schemas.js';
import { applyHealth, withHealth, type CheckedService, type HealthTarget, type ServiceHealth } from '../../domain/health.js';
import { isStale, type VmFields, type VmRecord } from '../../domain/vm.js';
import { isoTimestamp, servicesJson, vmJson, vmJsonParts, vmJsonString, type VmJsonString, type VmJsonText } from '../../domain/vm-json.js';
import type {
  CensusLine,
  EventType,
  Heartbeat,
  ImportedVm,
  ImportResult,
  JsonListing,
  JsonVm,
  ListFilter,
  Listing,
  RegistryEvent,
  RegistryStore,
  SweepOptions,
  WriteOptions,
} from '../store.js';
import { HeartbeatBatch } from './heartbeat-batch.js';
import { ListingCache } from './listing-cache.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { entryBytes, entryJson, listingBody, Mirror, type MirrorEntry } from './mirror.js';
import { WalCheckpointer } from './wal-checkpointer.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ":memory:". */
  file: string;
  clock: Clock;
  staleAfterMs: number;
  /** How many events the log keeps for watchers to resume from. */
  eventRetention?: number;
  /** Heartbeats are written to the file in one transaction per window of this many ms (default 1000). */
  heartbeatWindowMs?: number;
  /** REGISTRY_HEALTH_CHECKS=on: services with a healthPath carry their health (see withHealth). */
  healthChecks?: boolean;
}

/** How often the checkpointer thread folds the write-ahead log into the file. */
const CHECKPOINT_INTERVAL_MS = 250;
/**
 * Pages of write-ahead log after which a commit checkpoints on the event loop after all:
 * only reached if the checkpointer thread falls far behind (SQLite's default is 1000).
 */
const CHECKPOINT_SAFETY_NET_PAGES = 20_000;

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

/** What a transaction will do to the mirror and the revision once it commits. */
interface Staged {
  revision?: number;
  entries: Array<() => void>;
}

type Outcome = { ok: true; value: unknown; staged: Staged } | { ok: false; error: unknown };

/** What the mirror needs of a VM at open: id, role, status, owner, revision, registered_at, last_seen, stale_announced. */
type StandingRow = [string, VmRow['role'], VmRow['status'], string | null, number, number, number, 0 | 1];

interface EventRow {
  revision: number;
  type: EventType;
  at: number;
  vm: string;
}

const REMOVALS: ReadonlySet<EventType> = new Set(['deregistered', 'reaped']);

const jsonOf = (row: VmRow) =>
  vmJsonParts({
    id: row.id,
    name: row.name,
    role: row.role,
    status: row.status,
    address: row.address,
    registeredBy: row.registered_by,
    registeredAt: isoTimestamp(row.registered_at),
    services: row.services,
    metadata: row.metadata,
  });

/** What a mirror entry holds of its VM's row besides the JSON. */
type Standing = Pick<VmRow, 'id' | 'role' | 'status' | 'owner' | 'revision' | 'registered_at' | 'last_seen' | 'stale_announced'>;

/** The JSON of an entry loaded at open, until its `prepare` builds it. */
const NOT_YET_BUILT: VmJsonString = { json: '', lastSeenAt: 0, size: 0 };

/**
 * The one place a mirror entry is made. Every key is written out in one literal, so that all
 * entries share one shape (spreading the JSON in gave each entry a hidden class of its own:
 * 40 MB at 100k VMs), which the mirror's in-place update with Object.assign keeps.
 */
function entryOf(row: Standing, { json, lastSeenAt, size }: VmJsonString, prepare?: () => VmJsonText): MirrorEntry {
  return {
    json,
    lastSeenAt,
    size,
    prepare,
    services: undefined,
    id: row.id,
    role: row.role,
    status: row.status,
    owner: row.owner,
    revision: row.revision,
    registeredAt: row.registered_at,
    lastSeen: row.last_seen,
    staleAnnounced: row.stale_announced === 1,
  };
}

const parseServices = (text: string | null): CheckedService[] | undefined => (text === null ? undefined : JSON.parse(text));

const recordOf = (vm: Vm, owner: string | null, revision: number): VmRecord => ({
  ...vm,
  ...(owner !== null && { owner }),
  revision,
});

const toRecord = (entry: MirrorEntry, staleCutoff: number): VmRecord =>
  recordOf(JSON.parse(entryJson(entry, staleCutoff)) as Vm, entry.owner, entry.revision);

/** The newest events kept in memory, so that the change feed reads what was just committed without a query. */
const RECENT_EVENTS = 256;

function openDatabase(file: string): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    // In WAL mode NORMAL survives any process crash (kill -9 included): a commit is in the
    // OS before the call returns. Only an OS crash or power cut can lose the last commits.
    db.pragma('synchronous = NORMAL');
    // No full-file integrity check (it read the whole file on every start): a file that is
    // not a database fails on the first read above, and the store then reads every VM row
    // into its mirror, which refuses a table it cannot read.
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
  let db: Database.Database | undefined;
  try {
    db = openDatabase(options.file);
    return new SqliteStore(db, options);
  } catch (error) {
    if (db?.open) db.close();
    throw new StoreOpenError(
      `cannot open the SQLite database at ${options.file}: ${(error as Error).message}. ` +
        'vm-registry will not start over a database it cannot read; fix or move the file, or point REGISTRY_DB elsewhere.',
    );
  }
}

/**
 * The embedded store. The process owns its database file, so it keeps every VM in a mirror
 * (./mirror.ts) loaded at open and changed after each commit: reads never touch SQLite, and
 * list, discover and get answer with JSON prepared at write time. Changes still commit one
 * SQLite transaction each, with their revision and event, before the call returns.
 */
export class SqliteStore implements RegistryStore {
  readonly kind = 'sqlite';
  readonly staleAfterMs: number;
  private readonly clock: Clock;
  private readonly eventRetention: number;
  private readonly healthChecks: boolean;
  private readonly changeListeners = new Set<() => void>();
  private readonly sql;
  private readonly mirror = new Mirror();
  private readonly heartbeats: HeartbeatBatch;
  /** The committed registry revision. */
  private currentRevision: number;
  /** The last revision given to a change of the open transaction; written with its COMMIT. */
  private allocated = 0;
  /** What the change running now will do once its transaction commits. */
  private staged: Staged = { entries: [] };
  /** Listing bodies kept for the next reader while nothing changes (64 MB: a listing of ~170k VMs). */
  private readonly listings = new ListingCache(64 * 1024 * 1024);
  /** The newest committed events, consecutive revisions oldest first (see RECENT_EVENTS). */
  private readonly recentEvents: RegistryEvent[] = [];
  private readonly file: string;
  private checkpointer: WalCheckpointer | undefined;
  private closing: Promise<void> | undefined;
  private batch: Array<{ change: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void }> = [];

  constructor(
    private readonly db: Database.Database,
    options: SqliteStoreOptions,
  ) {
    this.file = options.file;
    this.clock = options.clock;
    this.staleAfterMs = options.staleAfterMs;
    this.eventRetention = options.eventRetention ?? 10_000;
    this.healthChecks = options.healthChecks ?? false;
    this.sql = {
      // Oldest first, the mirror's own order, so that loading appends instead of inserting.
      standings: db
        .prepare<[], StandingRow>('SELECT id, role, status, owner, revision, registered_at, last_seen, stale_announced FROM vms')
        .raw(true),
      heartbeats: db.prepare<[], [id: string, lastSeen: number]>('SELECT id, last_seen FROM heartbeats').raw(true),
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
      touch: db.prepare<[string, number]>(
        'INSERT INTO heartbeats (id, last_seen) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen',
      ),
      eventsAfter: db.prepare<[number, number], EventRow>(
        'SELECT revision, type, at, vm FROM events WHERE revision > ? ORDER BY revision LIMIT ?',
      ),
      oldestEvent: db.prepare<[], { revision: number | null }>('SELECT min(revision) AS revision FROM events'),
      revision: db.prepare<[], { value: number }>(`SELECT value FROM registry_state WHERE key = 'revision'`),
      setRevision: db.prepare<[number]>(`UPDATE registry_state SET value = ? WHERE key = 'revision'`),
      appendEvent: db.prepare('INSERT INTO events (revision, type, at, vm_id, vm) VALUES (?, ?, ?, ?, ?)'),
      trimEvents: db.prepare('DELETE FROM events WHERE revision <= ?'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      savepoint: db.prepare('SAVEPOINT change'),
      release: db.prepare('RELEASE change'),
      rollbackTo: db.prepare('ROLLBACK TO change'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
    const writeHeartbeats = db.transaction((ids: ReadonlySet<string>) => {
      for (const id of ids) {
        const entry = this.mirror.get(id);
        if (entry) this.sql.touch.run(id, entry.lastSeen);
      }
    });
    this.heartbeats = new HeartbeatBatch(options.heartbeatWindowMs ?? 1000, (ids) => {
      writeHeartbeats.immediate(ids);
      this.wrote();
    });
    // Reading every VM here is also the open-time check that the file is readable. Only what the
    // mirror needs is read now, as arrays; a VM's JSON is built from its row when first asked for,
    // so that a restart over 100k VMs answers its first discover without reading them all.
    const standings = this.sql.standings.all();
    // List order, oldest first (the mirror's own), so that loading appends instead of inserting.
    standings.sort((a, b) => a[5] - b[5] || (a[0] > b[0] ? -1 : a[0] < b[0] ? 1 : 0));
    for (const [id, role, status, owner, revision, registered_at, last_seen, stale_announced] of standings) {
      const standing = { id, role, status, owner, revision, registered_at, last_seen, stale_announced };
      this.mirror.set(entryOf(standing, NOT_YET_BUILT, () => this.jsonFromFile(id)));
    }
    for (const [id, lastSeen] of this.sql.heartbeats.all()) {
      const entry = this.mirror.get(id);
      if (entry && lastSeen > entry.lastSeen) entry.lastSeen = lastSeen;
    }
    this.currentRevision = this.sql.revision.get()!.value;
  }

  async register(vm: VmFields): Promise<VmRecord> {
    return this.batched(() => {
      // The primary key decides, not the mirror: an earlier change of the same batch may have
      // taken or freed the id. The change's savepoint undoes whatever the failed insert began.
      try {
        return this.insert(vm, this.clock.now());
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new ConflictError(vm.id);
        throw error;
      }
    });
  }

  async put(vm: VmFields, options: WriteOptions = {}): Promise<{ vm: VmRecord; created: boolean }> {
    return this.batched(() => {
      const current = this.current(vm.id);
      if (!current) {
        if (options.ifRevision !== undefined) throw new PreconditionFailedError(vm.id, options.ifRevision, 0);
        return { vm: this.insert(vm, this.clock.now()), created: true };
      }
      this.checkPrecondition(current, options);
      const now = this.clock.now();
      const revision = this.bump();
      const row: VmRow = {
        ...this.toRow(vm, revision, current.address === vm.address ? parseServices(current.services) : undefined),
        registered_at: current.registered_at,
        last_seen: now,
        owner: current.owner,
      };
      this.sql.replace.run(row);
      return { vm: this.record(row, 'updated', now), created: false };
    });
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const entry = this.mirror.get(id);
    return entry && toRecord(entry, this.staleCutoff());
  }

  async getJson(id: string): Promise<JsonVm | undefined> {
    const entry = this.mirror.get(id);
    return entry && { body: entryBytes(entry, this.staleCutoff()), revision: entry.revision };
  }

  async list(filter: ListFilter = {}): Promise<Listing> {
    const staleCutoff = this.staleCutoff();
    const { entries } = this.mirror.select(filter, staleCutoff);
    return { vms: entries.map((entry) => toRecord(entry, staleCutoff)), revision: this.currentRevision };
  }

  async listJson(filter: ListFilter = {}): Promise<JsonListing> {
    const now = this.clock.now();
    const cached = this.listings.get(filter, now);
    if (cached) return cached;
    const staleCutoff = now - this.staleAfterMs;
    const { entries, oldestFresh } = this.mirror.select(filter, staleCutoff);
    const revision = this.currentRevision;
    const body = listingBody(entries, revision, staleCutoff);
    this.listings.set(filter, { body, revision, until: oldestFresh + this.staleAfterMs });
    return { body, revision };
  }

  async census(): Promise<CensusLine[]> {
    return this.mirror.census(this.staleCutoff());
  }

  async update(id: string, changes: VmUpdate, options: WriteOptions = {}): Promise<VmRecord> {
    return this.batched(() => {
      const current = this.existing(id, options);
      const now = this.clock.now();
      const revision = this.bump();
      const moved = changes.address !== undefined && changes.address !== current.address;
      const previous = parseServices(current.services);
      const services = changes.services ?? (moved ? previous : undefined);
      const row: VmRow = {
        ...current,
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.status !== undefined && { status: changes.status }),
        ...(changes.address !== undefined && { address: changes.address }),
        ...(services !== undefined && { services: servicesJson(withHealth(services, moved ? undefined : previous, this.healthChecks)!) }),
        ...(changes.metadata !== undefined && { metadata: JSON.stringify(changes.metadata) }),
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
    return this.batched(() => {
      const current = this.existing(id, options);
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
      return { created, replaced: vms.length - created, revision: this.staged.revision ?? this.currentRevision };
    });
  }

  async recordHealth(id: string, target: HealthTarget, health: ServiceHealth): Promise<VmRecord | undefined> {
    return this.batched(() => {
      const current = this.current(id);
      const services = current && applyHealth(current.address, parseServices(current.services), target, health);
      if (!current || !services) return undefined;
      const row: VmRow = { ...current, services: servicesJson(services), revision: this.bump() };
      this.sql.replace.run(row);
      return this.record(row, 'updated', this.clock.now());
    });
  }

  async heartbeat(id: string, options: Pick<WriteOptions, 'owner'> = {}): Promise<Heartbeat> {
    const entry = this.mirror.get(id);
    if (!entry) throw new NotFoundError(id);
    if (options.owner !== undefined && entry.owner !== options.owner) throw new ForbiddenError(id, options.owner);
    const now = this.clock.now();
    const lastSeen = isoTimestamp(now);
    if (entry.staleAnnounced) {
      // A recovery is a change like any other: committed, with its event, before the answer.
      this.write(() => {
        const row: VmRow = { ...this.current(id)!, last_seen: now, revision: this.bump(), stale_announced: 0 };
        this.sql.replace.run(row);
        this.record(row, 'recovered', now);
      });
    } else {
      // The hot path: visible to readers at once, written to the file with the rest of its window.
      this.mirror.seen(entry, now);
      this.heartbeats.add(id);
      this.listings.clear();
    }
    return { id, lastSeen };
  }

  async sweep(options: SweepOptions = {}): Promise<number> {
    const limit = options.limit ?? 1000;
    return this.write(() => {
      const now = this.clock.now();
      let written = 0;
      for (const entry of this.mirror.silentSince(now - this.staleAfterMs, false, limit)) {
        const row: VmRow = { ...this.current(entry.id)!, revision: this.bump(), stale_announced: 1 };
        this.sql.replace.run(row);
        this.record(row, 'stale', now);
        written++;
      }
      if (options.reapAfterMs !== undefined) {
        for (const entry of this.mirror.silentSince(now - this.staleAfterMs - options.reapAfterMs, true, limit)) {
          const current = this.current(entry.id)!;
          this.sql.remove.run(current.id);
          this.record({ ...current, revision: this.bump() }, 'reaped', now);
          written++;
        }
      }
      return written;
    });
  }

  async eventsSince(since: number, limit = 1000): Promise<RegistryEvent[]> {
    // No read transaction needed: this process is the only writer, and it is not writing now.
    const current = this.currentRevision;
    if (since > current) {
      throw new GoneError(`revision ${since} is ahead of this registry (at ${current}); list again, then watch from its revision`);
    }
    const recent = this.recentEvents;
    if (recent.length > 0 && since >= recent[0].revision - 1) {
      const from = since - recent[0].revision + 1;
      return recent.slice(from, from + limit);
    }
    const oldest = this.sql.oldestEvent.get()!.revision ?? current + 1;
    if (since < oldest - 1) {
      throw new GoneError(
        `revision ${since} is older than the event log keeps (it starts after ${oldest - 1}); list again, then watch from its revision`,
      );
    }
    return this.sql.eventsAfter.all(since, limit).map((row) => {
      const vm = JSON.parse(row.vm) as Vm;
      // Events logged before VMs carried stale: judged now as it would have been then.
      if (vm.stale === undefined) vm.stale = isStale(vm, row.at, this.staleAfterMs);
      return { type: row.type, revision: row.revision, at: isoTimestamp(row.at), vm };
    });
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async revision(): Promise<number> {
    return this.currentRevision;
  }

  async count(): Promise<number> {
    // The count is the mirror's, but health checks call this to learn whether the database
    // still answers: one read of it says so.
    this.sql.revision.get();
    return this.mirror.size;
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutDown());
  }

  private async shutDown(): Promise<void> {
    await this.checkpointer?.stop();
    this.flushBatch();
    this.heartbeats.flush();
    // Folding the WAL back leaves one self-contained file behind for backups and copies.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  /** Runs one change in a transaction of its own (see commit) and answers its result or throws its error. */
  private write<T>(change: () => T): T {
    const [outcome] = this.commit([change]);
    if (!outcome.ok) throw outcome.error;
    return outcome.value as T;
  }

  /**
   * Group commit: changes that arrive together (concurrent requests) run in one immediate
   * transaction and share one COMMIT, the cost that dominated a write. Each caller is answered
   * only after that COMMIT, so a 2xx still means committed.
   */
  private batched<T>(change: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.batch.push({ change, resolve: resolve as (value: unknown) => void, reject });
      if (this.batch.length === 1) setImmediate(() => this.flushBatch());
    });
  }

  private flushBatch(): void {
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    let outcomes: Outcome[];
    try {
      outcomes = this.commit(batch.map(({ change }) => change));
    } catch (error) {
      for (const { reject } of batch) reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? batch[i].resolve(outcome.value) : batch[i].reject(outcome.error)));
  }

  /**
   * Runs changes in one immediate transaction, each under its own savepoint so that a refused
   * change undoes only itself, with one COMMIT; the revision counter and the event log's trim
   * are written once for all. Only after the COMMIT do the changes reach the mirror and the
   * revision, and the listeners hear once. Throws, with nothing changed, only when the
   * transaction itself fails.
   */
  private commit(changes: ReadonlyArray<() => unknown>): Outcome[] {
    const outcomes: Outcome[] = [];
    this.allocated = this.currentRevision;
    try {
      this.sql.begin.run();
      for (const change of changes) {
        this.staged = { entries: [] };
        const allocatedBefore = this.allocated;
        this.sql.savepoint.run();
        try {
          const value = change();
          this.sql.release.run();
          outcomes.push({ ok: true, value, staged: this.staged });
        } catch (error) {
          this.sql.rollbackTo.run();
          this.sql.release.run();
          this.allocated = allocatedBefore;
          outcomes.push({ ok: false, error });
        }
      }
      if (this.allocated !== this.currentRevision) {
        this.sql.setRevision.run(this.allocated);
        // Never this commit's own events: a watcher current before it must be able to read all of
        // them even when they outnumber the retention (a large import); the next commit trims them.
        this.sql.trimEvents.run(Math.min(this.allocated - this.eventRetention, this.currentRevision));
      }
      this.sql.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.sql.rollback.run();
      throw error;
    } finally {
      this.staged = { entries: [] };
    }
    let changed = false;
    for (const outcome of outcomes) {
      if (!outcome.ok) continue;
      for (const apply of outcome.staged.entries) apply();
      if (outcome.staged.revision !== undefined) {
        this.currentRevision = outcome.staged.revision;
        changed = true;
      }
    }
    if (changed) {
      this.wrote();
      this.listings.clear();
      for (const listener of this.changeListeners) listener();
    }
    return outcomes;
  }

  /**
   * Starts the checkpointer thread with the first write rather than at open: a restart's first
   * answers need not share the cores with starting a thread, and a store only read needs none.
   */
  private wrote(): void {
    if (this.checkpointer !== undefined || this.file === ':memory:') return;
    this.db.pragma(`wal_autocheckpoint = ${CHECKPOINT_SAFETY_NET_PAGES}`);
    this.checkpointer = new WalCheckpointer(this.file, CHECKPOINT_INTERVAL_MS, () => {
      if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
    });
  }

  /** Running VMs last seen before this are stale now. */
  private staleCutoff(): number {
    return this.clock.now() - this.staleAfterMs;
  }

  private jsonFromFile(id: string): VmJsonText {
    const row = this.sql.get.get(id)!;
    // Services written before the JSON was prepared at write time may hold the client's field order.
    const services = row.services === null ? null : servicesJson(JSON.parse(row.services));
    return jsonOf({ ...row, services });
  }

  /** The VM's row, with the lastSeen of heartbeats not yet written to the file. */
  private current(id: string): VmRow | undefined {
    const row = this.sql.get.get(id);
    const entry = this.mirror.get(id);
    if (row && entry) row.last_seen = entry.lastSeen;
    return row;
  }

  private insert(vm: VmFields, now: number): VmRecord {
    const row: VmRow = { ...this.toRow(vm, this.bump()), registered_at: now, last_seen: now };
    this.sql.insert.run(row);
    return this.record(row, 'registered', now);
  }

  /** `previous`: the services of the entry replaced at the same address, whose health carries over. */
  private toRow(vm: VmFields, revision: number, previous?: CheckedService[]): Omit<VmRow, 'registered_at' | 'last_seen'> {
    const services = withHealth(vm.services, previous, this.healthChecks);
    return {
      id: vm.id,
      name: vm.name,
      role: vm.role,
      status: vm.status,
      address: vm.address,
      registered_by: vm.registeredBy,
      services: services === undefined ? null : servicesJson(services),
      metadata: vm.metadata === undefined ? null : JSON.stringify(vm.metadata),
      revision,
      stale_announced: 0,
      owner: vm.owner ?? null,
    };
  }

  /**
   * Appends the change to the event log inside the caller's transaction, and stages the
   * mirror's update for after the commit. The entry's JSON serves both; the event's shows
   * whether the VM was stale at the change.
   */
  private record(row: VmRow, type: EventType, at: number): VmRecord {
    const parts = jsonOf(row);
    const text = vmJsonString(parts, row.last_seen);
    const entry = entryOf(row, text);
    const json = isStale(entry, at, this.staleAfterMs) ? vmJson(parts, row.last_seen, true) : text.json;
    this.sql.appendEvent.run(row.revision, type, at, row.id, json);
    const vm = JSON.parse(json) as Vm;
    const event: RegistryEvent = { type, revision: row.revision, at: isoTimestamp(at), vm };
    this.staged.entries.push(() => {
      if (REMOVALS.has(type)) this.mirror.delete(row.id);
      else this.mirror.set(entry);
      this.remember(event);
    });
    return recordOf(vm, row.owner, row.revision);
  }

  private remember(event: RegistryEvent): void {
    if (this.recentEvents.length === Math.min(RECENT_EVENTS, this.eventRetention)) this.recentEvents.shift();
    this.recentEvents.push(event);
  }

  private bump(): number {
    const revision = ++this.allocated;
    this.staged.revision = revision;
    return revision;
  }

  /** The row of the VM a change applies to, once the caller's preconditions hold for it. */
  private existing(id: string, options: WriteOptions): VmRow {
    const current = this.current(id);
    if (!current) throw new NotFoundError(id);
    this.checkPrecondition(current, options);
    return current;
  }

  private checkPrecondition(current: VmRow, options: WriteOptions): void {
    if (options.owner !== undefined && current.owner !== options.owner) throw new ForbiddenError(current.id, options.owner);
    if (options.ifRevision !== undefined && options.ifRevision !== current.revision) {
      throw new PreconditionFailedError(current.id, options.ifRevision, current.revision);
    }
  }
}
