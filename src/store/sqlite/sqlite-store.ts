import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../domain/clock.js';
import { ConflictError, ForbiddenError, GoneError, NotFoundError, PreconditionFailedError } from '../../domain/errors.js';
import type { Vm, VmUpdate } from '../../domain/schemas.js';
import type { VmFields, VmRecord } from '../../domain/vm.js';
import { isoTimestamp, servicesJson, vmJsonParts, vmJsonString, type VmJsonString, type VmJsonText } from '../../domain/vm-json.js';
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
import { entryBytes, entryJson, entryText, listingBody, Mirror, type MirrorEntry } from './mirror.js';
import type { VmRow, WriteBatch, WriteOp } from './write-batch.js';
import { InlineWriter, ThreadWriter, type Writer } from './writer.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ":memory:". */
  file: string;
  clock: Clock;
  staleAfterMs: number;
  /** How many events the log keeps for watchers to resume from. */
  eventRetention?: number;
  /** Heartbeats are written to the file in one transaction per window of this many ms (default 1000). */
  heartbeatWindowMs?: number;
}

/** How often the writer thread folds the write-ahead log into the file, after writing. */
const CHECKPOINT_INTERVAL_MS = 250;

/** Opening failed: the message says which file and why, for the operator. */
export class StoreOpenError extends Error {}

/** What one change writes, and will do to the mirror and the revision once its batch commits. */
interface Staged {
  revision?: number;
  ops: WriteOp[];
  /** The entries it changed (null: removed), as the changes after it in the batch must see them. */
  entries: Map<string, MirrorEntry | null>;
  apply: Array<() => void>;
}

const nothingStaged = (): Staged => ({ ops: [], entries: new Map(), apply: [] });

type Outcome = { ok: true; value: unknown; staged: Staged } | { ok: false; error: unknown };

/** A batch decided and given to the writer. */
interface Decided {
  outcomes: Outcome[];
  writes: WriteBatch;
}

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

const recordOf = (vm: Vm, owner: string | null, revision: number): VmRecord => ({
  ...vm,
  ...(owner !== null && { owner }),
  revision,
});

/** The entry's row, read back from its JSON: cheaper than asking SQLite for it. */
function rowOf(entry: MirrorEntry): VmRow {
  const vm = JSON.parse(entryText(entry)) as Vm;
  return {
    id: entry.id,
    name: vm.name,
    role: entry.role,
    status: entry.status,
    address: vm.address,
    registered_by: vm.registeredBy,
    services: vm.services === undefined ? null : servicesJson(vm.services),
    metadata: vm.metadata === undefined ? null : JSON.stringify(vm.metadata),
    registered_at: entry.registeredAt,
    last_seen: entry.lastSeen,
    revision: entry.revision,
    stale_announced: entry.staleAnnounced ? 1 : 0,
    owner: entry.owner,
  };
}

const toRecord = (entry: MirrorEntry): VmRecord => recordOf(JSON.parse(entryJson(entry)) as Vm, entry.owner, entry.revision);

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
 * list, discover and get answer with JSON prepared at write time. Changes are decided against
 * the mirror on the event loop and committed, with their revision and event, by the writer
 * thread (./writer.ts) before the call returns.
 */
export class SqliteStore implements RegistryStore {
  readonly kind = 'sqlite';
  readonly staleAfterMs: number;
  private readonly clock: Clock;
  private readonly eventRetention: number;
  private readonly changeListeners = new Set<() => void>();
  private readonly sql;
  private readonly mirror = new Mirror();
  private readonly heartbeats: HeartbeatBatch;
  /** The committed registry revision. */
  private currentRevision: number;
  /** The last revision given to a change, committed or not. */
  private allocated: number;
  /** What the change being decided will write and do. */
  private staged: Staged = nothingStaged();
  /**
   * Entries changed by batches the writer has not committed yet (null: removed), each with the
   * batch that changed it last: later changes are decided on them.
   */
  private readonly unconfirmed = new Map<string, { entry: MirrorEntry | null; by: Decided }>();
  /** Batches decided since the last failed write; see WriteBatch.epoch. */
  private epoch = 0;
  /** Listing bodies kept for the next reader while nothing changes (64 MB: a listing of ~170k VMs). */
  private readonly listings = new ListingCache(64 * 1024 * 1024);
  /** The newest committed events, consecutive revisions oldest first (see RECENT_EVENTS). */
  private readonly recentEvents: RegistryEvent[] = [];
  private readonly file: string;
  private writer: Writer | undefined;
  /** Settles (never rejects) once the callers of the last batch given to the writer are answered. */
  private lastWrite: Promise<void> | undefined;
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
    // Reads only: every write goes through the writer (see batched).
    this.sql = {
      // Oldest first, the mirror's own order, so that loading appends instead of inserting.
      standings: db
        .prepare<[], StandingRow>('SELECT id, role, status, owner, revision, registered_at, last_seen, stale_announced FROM vms')
        .raw(true),
      heartbeats: db.prepare<[], [id: string, lastSeen: number]>('SELECT id, last_seen FROM heartbeats').raw(true),
      get: db.prepare<[string], VmRow>('SELECT * FROM vms WHERE id = ?'),
      eventsAfter: db.prepare<[number, number], EventRow>(
        'SELECT revision, type, at, vm FROM events WHERE revision > ? ORDER BY revision LIMIT ?',
      ),
      oldestEvent: db.prepare<[], { revision: number | null }>('SELECT min(revision) AS revision FROM events'),
      revision: db.prepare<[], { value: number }>(`SELECT value FROM registry_state WHERE key = 'revision'`),
    };
    this.heartbeats = new HeartbeatBatch(options.heartbeatWindowMs ?? 1000, (ids) =>
      this.batched(() => {
        for (const id of ids) {
          const entry = this.lookup(id);
          if (entry) this.stage({ kind: 'touch', id, lastSeen: entry.lastSeen });
        }
      }),
    );
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
    this.allocated = this.currentRevision;
  }

  async register(vm: VmFields): Promise<VmRecord> {
    return this.batched(() => {
      if (this.lookup(vm.id)) throw new ConflictError(vm.id);
      return this.insert(vm, this.clock.now());
    });
  }

  async put(vm: VmFields, options: WriteOptions = {}): Promise<{ vm: VmRecord; created: boolean }> {
    return this.batched(() => {
      const current = this.lookup(vm.id);
      if (!current) {
        if (options.ifRevision !== undefined) throw new PreconditionFailedError(vm.id, options.ifRevision, 0);
        return { vm: this.insert(vm, this.clock.now()), created: true };
      }
      this.checkPrecondition(current, options);
      const now = this.clock.now();
      const revision = this.bump();
      const row: VmRow = {
        ...this.toRow(vm, revision),
        registered_at: current.registeredAt,
        last_seen: now,
        owner: current.owner,
      };
      this.stage({ kind: 'replace', row });
      return { vm: this.record(row, 'updated', now), created: false };
    });
  }

  async get(id: string): Promise<VmRecord | undefined> {
    const entry = this.mirror.get(id);
    return entry && toRecord(entry);
  }

  async getJson(id: string): Promise<JsonVm | undefined> {
    const entry = this.mirror.get(id);
    return entry && { body: entryBytes(entry), revision: entry.revision };
  }

  async list(filter: ListFilter = {}): Promise<Listing> {
    const { entries } = this.mirror.select(filter, this.clock.now() - this.staleAfterMs);
    return { vms: entries.map((entry) => toRecord(entry)), revision: this.currentRevision };
  }

  async listJson(filter: ListFilter = {}): Promise<JsonListing> {
    const now = this.clock.now();
    const cached = this.listings.get(filter, now);
    if (cached) return cached;
    const { entries, oldestFresh } = this.mirror.select(filter, now - this.staleAfterMs);
    const revision = this.currentRevision;
    const body = listingBody(entries, revision);
    this.listings.set(filter, { body, revision, until: oldestFresh + this.staleAfterMs });
    return { body, revision };
  }

  async census(): Promise<CensusLine[]> {
    return this.mirror.census(this.clock.now() - this.staleAfterMs);
  }

  async update(id: string, changes: VmUpdate, options: WriteOptions = {}): Promise<VmRecord> {
    return this.batched(() => {
      const current = rowOf(this.existing(id, options));
      const now = this.clock.now();
      const revision = this.bump();
      const row: VmRow = {
        ...current,
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.status !== undefined && { status: changes.status }),
        ...(changes.address !== undefined && { address: changes.address }),
        ...(changes.services !== undefined && { services: servicesJson(changes.services) }),
        ...(changes.metadata !== undefined && { metadata: JSON.stringify(changes.metadata) }),
        // Only a move to running says the VM is alive; pausing or renaming a dead VM must not revive it.
        last_seen: changes.status === 'running' ? now : current.last_seen,
        revision,
      };
      // Still announced stale only while it is still running and no fresher than when announced.
      row.stale_announced = row.status === 'running' && row.last_seen === current.last_seen ? current.stale_announced : 0;
      this.stage({ kind: 'replace', row });
      return this.record(row, 'updated', now);
    });
  }

  async deregister(id: string, options: WriteOptions = {}): Promise<VmRecord> {
    return this.batched(() => {
      const current = rowOf(this.existing(id, options));
      const now = this.clock.now();
      const revision = this.bump();
      this.stage({ kind: 'remove', id });
      return this.record({ ...current, revision }, 'deregistered', now);
    });
  }

  async import(vms: ImportedVm[]): Promise<ImportResult> {
    return this.batched(() => {
      const now = this.clock.now();
      let created = 0;
      for (const vm of vms) {
        // Delete and insert rather than update: the replace statement keeps registered_at, an import must not.
        const replaced = this.lookup(vm.id) !== undefined;
        if (replaced) this.stage({ kind: 'remove', id: vm.id });
        const row: VmRow = { ...this.toRow(vm, this.bump()), registered_at: vm.registeredAt, last_seen: vm.lastSeen };
        this.stage({ kind: 'insert', row });
        this.record(row, replaced ? 'updated' : 'registered', now);
        if (!replaced) created++;
      }
      return { created, replaced: vms.length - created, revision: this.staged.revision ?? this.currentRevision };
    });
  }

  async heartbeat(id: string, options: Pick<WriteOptions, 'owner'> = {}): Promise<Heartbeat> {
    const entry = this.mirror.get(id);
    if (!entry) throw new NotFoundError(id);
    if (options.owner !== undefined && entry.owner !== options.owner) throw new ForbiddenError(id, options.owner);
    const now = this.clock.now();
    if (entry.staleAnnounced) {
      // A recovery is a change like any other: committed, with its event, before the answer.
      await this.batched(() => {
        const current = rowOf(this.existing(id, options));
        if (current.stale_announced === 0) {
          // An earlier change of the batch (a heartbeat too) already made it fresh.
          this.staged.apply.push(() => this.seen(id, now));
        } else {
          const row: VmRow = { ...current, last_seen: now, revision: this.bump(), stale_announced: 0 };
          this.stage({ kind: 'replace', row });
          this.record(row, 'recovered', now);
        }
      });
    } else {
      this.seen(id, now);
    }
    return { id, lastSeen: isoTimestamp(now) };
  }

  async sweep(options: SweepOptions = {}): Promise<number> {
    const limit = options.limit ?? 1000;
    return this.batched(() => {
      const now = this.clock.now();
      let written = 0;
      for (const entry of this.mirror.silentSince(now - this.staleAfterMs, false, limit)) {
        // One a change not yet committed touches waits for the next sweep.
        if (this.lookup(entry.id) !== entry) continue;
        const row: VmRow = { ...rowOf(entry), revision: this.bump(), stale_announced: 1 };
        this.stage({ kind: 'replace', row });
        this.record(row, 'stale', now);
        written++;
      }
      if (options.reapAfterMs !== undefined) {
        for (const entry of this.mirror.silentSince(now - this.staleAfterMs - options.reapAfterMs, true, limit)) {
          if (this.lookup(entry.id) !== entry) continue;
          this.stage({ kind: 'remove', id: entry.id });
          this.record({ ...rowOf(entry), revision: this.bump() }, 'reaped', now);
          written++;
        }
      }
      return written;
    });
  }

  async eventsSince(since: number, limit = 1000): Promise<RegistryEvent[]> {
    // No read transaction needed: events reach currentRevision only once committed.
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
    return this.sql.eventsAfter.all(since, limit).map((row) => ({ type: row.type, revision: row.revision, at: isoTimestamp(row.at), vm: JSON.parse(row.vm) }));
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async revision(): Promise<number> {
    return this.currentRevision;
  }

  async count(): Promise<number> {
    // The count is the mirror's, but health checks call this to learn whether the store still
    // works: the writer must be able to write, and one read says the database still answers.
    this.writer?.check();
    this.sql.revision.get();
    return this.mirror.size;
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutDown());
  }

  private async shutDown(): Promise<void> {
    try {
      await this.heartbeats.flush();
      while (this.lastWrite !== undefined || this.batch.length > 0) {
        this.flushBatch();
        await this.lastWrite;
      }
    } finally {
      await this.writer?.close();
      // Folding the WAL back leaves one self-contained file behind for backups and copies.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }

  /** A plain heartbeat: visible to readers at once, written to the file with the rest of its window. */
  private seen(id: string, now: number): void {
    const entry = this.mirror.get(id);
    if (!entry) return;
    this.mirror.seen(entry, now);
    // A change on its way to the file must not bring back the lastSeen this one replaced.
    const changed = this.unconfirmed.get(id)?.entry;
    if (changed) changed.lastSeen = now;
    this.heartbeats.add(id);
    this.listings.clear();
  }

  /**
   * Group commit: changes that arrive together (concurrent requests) are decided together and
   * written in one transaction with one COMMIT, the cost that dominated a write. The next batch
   * is decided and given to the writer without waiting for the last to commit. Each caller is
   * answered only after its COMMIT, so a 2xx still means committed.
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
    const epoch = this.epoch;
    let decided: Decided | undefined;
    let written: Promise<void>;
    try {
      const writer = this.startedWriter();
      decided = this.decide(batch.map(({ change }) => change));
      written = writer.write(decided.writes);
    } catch (error) {
      written = Promise.reject(error);
    }
    const answered: Promise<void> = written
      .then(
        () => {
          this.committed(decided!);
          decided!.outcomes.forEach((outcome, i) => (outcome.ok ? batch[i].resolve(outcome.value) : batch[i].reject(outcome.error)));
        },
        (error: unknown) => {
          this.failed(epoch);
          for (const { reject } of batch) reject(error);
        },
      )
      .finally(() => {
        if (this.lastWrite === answered) this.lastWrite = undefined;
      });
    this.lastWrite = answered;
  }

  /**
   * Decides the changes in order against the mirror and what the changes before them did to
   * it, committed or not, and collects what they write. A change that throws is refused alone:
   * what it staged is dropped, its revisions are given again.
   */
  private decide(changes: ReadonlyArray<() => unknown>): Decided {
    const decided: Decided = { outcomes: [], writes: { epoch: this.epoch, ops: [] } };
    const revisionBefore = this.allocated;
    try {
      for (const change of changes) {
        this.staged = nothingStaged();
        const allocatedBefore = this.allocated;
        try {
          const value = change();
          for (const op of this.staged.ops) decided.writes.ops.push(op);
          for (const [id, entry] of this.staged.entries) this.unconfirmed.set(id, { entry, by: decided });
          decided.outcomes.push({ ok: true, value, staged: this.staged });
        } catch (error) {
          this.allocated = allocatedBefore;
          decided.outcomes.push({ ok: false, error });
        }
      }
    } finally {
      this.staged = nothingStaged();
    }
    if (this.allocated !== revisionBefore) {
      decided.writes.revision = this.allocated;
      decided.writes.trimThrough = this.allocated - this.eventRetention;
    }
    return decided;
  }

  /** A write failed: the batches decided on it fail too (the writer refuses them), later ones are decided afresh. */
  private failed(epoch: number): void {
    if (epoch !== this.epoch) return;
    this.epoch++;
    this.unconfirmed.clear();
    this.allocated = this.currentRevision;
  }

  /** Once the batch is committed: its changes reach the mirror and the revision, and the listeners hear once. */
  private committed(decided: Decided): void {
    let changed = false;
    for (const outcome of decided.outcomes) {
      if (!outcome.ok) continue;
      for (const apply of outcome.staged.apply) apply();
      for (const id of outcome.staged.entries.keys()) {
        if (this.unconfirmed.get(id)?.by === decided) this.unconfirmed.delete(id);
      }
      if (outcome.staged.revision !== undefined) {
        this.currentRevision = outcome.staged.revision;
        changed = true;
      }
    }
    if (changed) {
      this.listings.clear();
      for (const listener of this.changeListeners) listener();
    }
  }

  /**
   * Starts the writer with the first write rather than at open: a restart's first answers need
   * not share the cores with starting a thread, and a store only read needs none.
   */
  private startedWriter(): Writer {
    if (!this.db.open) throw new Error('the store is closed');
    return (this.writer ??= this.file === ':memory:' ? new InlineWriter(this.db) : new ThreadWriter(this.file, CHECKPOINT_INTERVAL_MS));
  }

  private jsonFromFile(id: string): VmJsonText {
    const row = this.sql.get.get(id)!;
    // Services written before the JSON was prepared at write time may hold the client's field order.
    const services = row.services === null ? null : servicesJson(JSON.parse(row.services));
    return jsonOf({ ...row, services });
  }

  /** The VM as the change being decided sees it: as the changes before it left it, committed or not. */
  private lookup(id: string): MirrorEntry | undefined {
    if (this.staged.entries.has(id)) return this.staged.entries.get(id) ?? undefined;
    const unconfirmed = this.unconfirmed.get(id);
    return unconfirmed === undefined ? this.mirror.get(id) : (unconfirmed.entry ?? undefined);
  }

  private stage(op: WriteOp): void {
    this.staged.ops.push(op);
  }

  private insert(vm: VmFields, now: number): VmRecord {
    const row: VmRow = { ...this.toRow(vm, this.bump()), registered_at: now, last_seen: now };
    this.stage({ kind: 'insert', row });
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
      services: vm.services === undefined ? null : servicesJson(vm.services),
      metadata: vm.metadata === undefined ? null : JSON.stringify(vm.metadata),
      revision,
      stale_announced: 0,
      owner: vm.owner ?? null,
    };
  }

  /**
   * Appends the change to the event log of its batch, and stages the mirror's update for after
   * the commit. The entry's JSON serves both.
   */
  private record(row: VmRow, type: EventType, at: number): VmRecord {
    const text = vmJsonString(jsonOf(row), row.last_seen);
    const removed = REMOVALS.has(type);
    const entry = entryOf(row, text);
    this.stage({ kind: 'event', revision: row.revision, type, at, id: row.id, json: text.json });
    this.staged.entries.set(row.id, removed ? null : entry);
    const vm = JSON.parse(text.json) as Vm;
    const event: RegistryEvent = { type, revision: row.revision, at: isoTimestamp(at), vm };
    this.staged.apply.push(() => {
      if (removed) this.mirror.delete(row.id);
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

  /** The entry of the VM a change applies to, once the caller's preconditions hold for it. */
  private existing(id: string, options: WriteOptions): MirrorEntry {
    const current = this.lookup(id);
    if (!current) throw new NotFoundError(id);
    this.checkPrecondition(current, options);
    return current;
  }

  private checkPrecondition(current: MirrorEntry, options: WriteOptions): void {
    if (options.owner !== undefined && current.owner !== options.owner) throw new ForbiddenError(current.id, options.owner);
    if (options.ifRevision !== undefined && options.ifRevision !== current.revision) {
      throw new PreconditionFailedError(current.id, options.ifRevision, current.revision);
    }
  }
}
