import type Database from 'better-sqlite3';
import type { Clock } from '../../domain/clock.js';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import type { Vm, VmUpdate } from '../../domain/schemas/vm.js';
import type { ServiceHealth } from '../../domain/schemas/service-health.js';
import { applyHealth, withHealth, type CheckedService, type HealthTarget } from '../../domain/service-health.js';
import { isStale, type VmFields, type VmRecord } from '../../domain/vm.js';
import { staysStaleAfterUpdate } from '../../domain/stale-after-event.js';
import { isoTimestamp, servicesJson, vmJson, vmJsonString } from '../../domain/vm-json.js';
import {
  ChangeListeners,
  checkCreate,
  checkNotAhead,
  checkOwner,
  checkRetained,
  checkWrite,
  DEFAULT_EVENT_RETENTION,
  DEFAULT_PAGE,
  recordOf,
} from '../rules.js';
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
  RegistryStore,
  SweepOptions,
  WriteOptions,
} from '../store.js';
import type { EventType, RegistryEvent } from '../../domain/schemas/events.js';
import { GroupCommit } from './group-commit.js';
import { HeartbeatBatch } from './heartbeat-batch.js';
import { entryOf } from '../mirror.js';
import { MirrorReads } from '../mirror-reads.js';
import { openDatabase, startCheckpointing } from './open.js';
import { RecentEvents } from '../recent-events.js';
import { jsonOf, loadMirror, parseServices, rowOf, rowStatements, type RowStatements, type VmRow } from './rows.js';
import type { WalCheckpointer } from './wal-checkpointer.js';

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

/** Opening failed: the message says which file and why, for the operator. */
export class StoreOpenError extends Error {}

const REMOVALS: ReadonlySet<EventType> = new Set(['deregistered', 'reaped']);

/** How many of the newest events are kept in memory for the change feed. */
const RECENT_EVENTS = 256;

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
 * (../mirror.ts) loaded at open and changed after each commit: reads never touch SQLite, and
 * list, discover and get answer with JSON prepared at write time. Changes still commit one
 * SQLite transaction each, with their revision and event, before the call returns.
 */
export class SqliteStore implements RegistryStore {
  readonly kind = 'sqlite';
  readonly staleAfterMs: number;
  private readonly clock: Clock;
  private readonly healthChecks: boolean;
  private readonly changeListeners = new ChangeListeners();
  private readonly sql: RowStatements;
  private readonly reads: MirrorReads;
  private readonly commits: GroupCommit;
  private readonly heartbeats: HeartbeatBatch;
  private readonly recentEvents: RecentEvents;
  private readonly file: string;
  private checkpointer: WalCheckpointer | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly db: Database.Database,
    options: SqliteStoreOptions,
  ) {
    this.file = options.file;
    this.clock = options.clock;
    this.staleAfterMs = options.staleAfterMs;
    this.healthChecks = options.healthChecks ?? false;
    const eventRetention = options.eventRetention ?? DEFAULT_EVENT_RETENTION;
    this.recentEvents = new RecentEvents(Math.min(RECENT_EVENTS, eventRetention));
    this.reads = new MirrorReads({ now: () => this.clock.now(), staleAfterMs: this.staleAfterMs, revision: () => this.commits.revision });
    this.commits = new GroupCommit(db, eventRetention, () => {
      this.ensureCheckpointing();
      this.reads.changed();
      this.changeListeners.notify();
    });
    this.sql = rowStatements(db);
    const writeHeartbeats = db.transaction((ids: ReadonlySet<string>) => {
      for (const id of ids) {
        const entry = this.reads.mirror.get(id);
        if (entry) this.sql.touch.run(id, entry.lastSeen);
      }
    });
    this.heartbeats = new HeartbeatBatch(options.heartbeatWindowMs ?? 1000, (ids) => {
      writeHeartbeats.immediate(ids);
      this.ensureCheckpointing();
    });
    loadMirror(db, this.reads.mirror);
  }

  async register(vm: VmFields): Promise<VmRecord> {
    return this.commits.batched(() => {
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
    return this.commits.batched(() => {
      const current = this.current(vm.id);
      if (!current) {
        checkCreate(vm.id, options);
        return { vm: this.insert(vm, this.clock.now()), created: true };
      }
      checkWrite(current.id, current, options);
      const now = this.clock.now();
      const revision = this.commits.nextRevision();
      const row: VmRow = {
        ...this.rowOf(vm, revision, current.address === vm.address ? parseServices(current.services) : undefined),
        registered_at: current.registered_at,
        last_seen: now,
        owner: current.owner,
      };
      this.sql.replace.run(row);
      return { vm: this.logChange(row, 'updated', now), created: false };
    });
  }

  async get(id: string): Promise<VmRecord | undefined> {
    return this.reads.get(id);
  }

  async getJson(id: string): Promise<JsonVm | undefined> {
    return this.reads.getJson(id);
  }

  async list(filter: ListFilter = {}): Promise<Listing> {
    return this.reads.list(filter);
  }

  async feedListing(): Promise<FeedListing> {
    return this.reads.feedListing();
  }

  async listJson(filter: ListFilter = {}): Promise<JsonListing> {
    return this.reads.listJson(filter);
  }

  async census(): Promise<CensusLine[]> {
    return this.reads.census();
  }

  async update(id: string, changes: VmUpdate, options: WriteOptions = {}): Promise<VmRecord> {
    return this.commits.batched(() => {
      const current = this.existing(id, options);
      const now = this.clock.now();
      const revision = this.commits.nextRevision();
      const moved = changes.address !== undefined && changes.address !== current.address;
      const previous = parseServices(current.services);
      const services = withHealth(changes.services ?? (moved ? previous : undefined), moved ? undefined : previous, this.healthChecks);
      const row: VmRow = {
        ...current,
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.status !== undefined && { status: changes.status }),
        ...(changes.address !== undefined && { address: changes.address }),
        ...(services !== undefined && { services: servicesJson(services) }),
        ...(changes.metadata !== undefined && { metadata: JSON.stringify(changes.metadata) }),
        // Only a move to running says the VM is alive; pausing or renaming a dead VM must not revive it.
        last_seen: changes.status === 'running' ? now : current.last_seen,
        revision,
      };
      row.stale_announced = staysStaleAfterUpdate({ lastSeen: current.last_seen }, { status: row.status, lastSeen: row.last_seen })
        ? current.stale_announced
        : 0;
      this.sql.replace.run(row);
      return this.logChange(row, 'updated', now);
    });
  }

  async deregister(id: string, options: WriteOptions = {}): Promise<VmRecord> {
    return this.commits.batched(() => {
      const current = this.existing(id, options);
      const now = this.clock.now();
      const revision = this.commits.nextRevision();
      this.sql.remove.run(id);
      return this.logChange({ ...current, revision }, 'deregistered', now);
    });
  }

  async import(vms: ImportedVm[]): Promise<ImportResult> {
    return this.commits.write(() => {
      const now = this.clock.now();
      let created = 0;
      for (const vm of vms) {
        // Delete and insert rather than update: the replace statement keeps registered_at, an import must not.
        const replaced = this.sql.remove.run(vm.id).changes > 0;
        const row: VmRow = { ...this.rowOf(vm, this.commits.nextRevision()), registered_at: vm.registeredAt, last_seen: vm.lastSeen };
        this.sql.insert.run(row);
        this.logChange(row, replaced ? 'updated' : 'registered', now);
        if (!replaced) created++;
      }
      return { created, replaced: vms.length - created, revision: this.commits.revisionSoFar };
    });
  }

  async recordHealth(id: string, target: HealthTarget, health: ServiceHealth): Promise<VmRecord | undefined> {
    return this.commits.batched(() => {
      const current = this.current(id);
      const services = current && applyHealth(current.address, parseServices(current.services), target, health);
      if (!current || !services) return undefined;
      const row: VmRow = { ...current, services: servicesJson(services), revision: this.commits.nextRevision() };
      this.sql.replace.run(row);
      return this.logChange(row, 'updated', this.clock.now());
    });
  }

  async heartbeat(id: string, options: Pick<WriteOptions, 'owner'> = {}): Promise<Heartbeat> {
    const entry = this.reads.mirror.get(id);
    if (!entry) throw new NotFoundError(id);
    checkOwner(id, entry.owner, options);
    const now = this.clock.now();
    const lastSeen = isoTimestamp(now);
    if (entry.staleAnnounced) {
      // A recovery is a change like any other: committed, with its event, before the answer.
      this.commits.write(() => {
        const row: VmRow = { ...this.current(id)!, last_seen: now, revision: this.commits.nextRevision(), stale_announced: 0 };
        this.sql.replace.run(row);
        this.logChange(row, 'recovered', now);
      });
    } else {
      // The hot path: visible to readers at once, written to the file with the rest of its window.
      this.reads.seen(entry, now);
      this.heartbeats.add(id);
    }
    return { id, lastSeen };
  }

  async sweep(options: SweepOptions = {}): Promise<number> {
    const limit = options.limit ?? DEFAULT_PAGE;
    return this.commits.write(() => {
      const now = this.clock.now();
      let written = 0;
      for (const entry of this.reads.mirror.silentSince(now - this.staleAfterMs, false, limit)) {
        const row: VmRow = { ...this.current(entry.id)!, revision: this.commits.nextRevision(), stale_announced: 1 };
        this.sql.replace.run(row);
        this.logChange(row, 'stale', now);
        written++;
      }
      if (options.reapAfterMs !== undefined) {
        for (const entry of this.reads.mirror.silentSince(now - this.staleAfterMs - options.reapAfterMs, true, limit)) {
          const current = this.current(entry.id)!;
          this.sql.remove.run(current.id);
          this.logChange({ ...current, revision: this.commits.nextRevision() }, 'reaped', now);
          written++;
        }
      }
      return written;
    });
  }

  async eventsSince(since: number, limit = DEFAULT_PAGE): Promise<RegistryEvent[]> {
    // No read transaction needed: this process is the only writer, and it is not writing now.
    const current = this.commits.revision;
    checkNotAhead(since, current);
    const recent = this.recentEvents.after(since, limit);
    if (recent) return recent;
    checkRetained(since, this.sql.oldestEvent.get()!.revision, current);
    return this.sql.eventsAfter.all(since, limit).map((row) => {
      const vm = JSON.parse(row.vm) as Vm;
      // Events logged before VMs carried stale: judged now as it would have been then.
      if (vm.stale === undefined) vm.stale = isStale(vm, row.at, this.staleAfterMs);
      return { type: row.type, revision: row.revision, at: isoTimestamp(row.at), vm };
    });
  }

  onChange(listener: () => void): () => void {
    return this.changeListeners.add(listener);
  }

  async revision(): Promise<number> {
    return this.commits.revision;
  }

  async count(): Promise<number> {
    // The count is the mirror's, but health checks call this to learn whether the database
    // still answers: one read of it says so.
    this.commits.readRevision();
    return this.reads.mirror.size;
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutDown());
  }

  private async shutDown(): Promise<void> {
    await this.checkpointer?.stop();
    this.commits.flush();
    this.heartbeats.flush();
    // Folding the WAL back leaves one self-contained file behind for backups and copies.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  /**
   * Starts the checkpointer thread with the first write rather than at open: a restart's first
   * answers need not share the cores with starting a thread, and a store only read needs none.
   */
  private ensureCheckpointing(): void {
    if (this.checkpointer !== undefined || this.file === ':memory:') return;
    this.checkpointer = startCheckpointing(this.db, this.file);
  }

  /** A new row's columns; `previous`: the services of the entry replaced at the same address, whose health carries over. */
  private rowOf(vm: VmFields, revision: number, previous?: CheckedService[]): Omit<VmRow, 'registered_at' | 'last_seen'> {
    return rowOf({ ...vm, services: withHealth(vm.services, previous, this.healthChecks) }, revision);
  }

  /** The VM's row, with the lastSeen of heartbeats not yet written to the file. */
  private current(id: string): VmRow | undefined {
    const row = this.sql.get.get(id);
    const entry = this.reads.mirror.get(id);
    if (row && entry) row.last_seen = entry.lastSeen;
    return row;
  }

  private insert(vm: VmFields, now: number): VmRecord {
    const row: VmRow = { ...this.rowOf(vm, this.commits.nextRevision()), registered_at: now, last_seen: now };
    this.sql.insert.run(row);
    return this.logChange(row, 'registered', now);
  }

  /**
   * Appends the change to the event log inside the caller's transaction, and has it reach the
   * mirror and the recent events once that commits. The entry's JSON serves both; the event's
   * also says whether the VM was stale at the change. Answers the VM as the change left it.
   */
  private logChange(row: VmRow, type: EventType, at: number): VmRecord {
    const parts = jsonOf(row);
    const text = vmJsonString(parts, row.last_seen);
    const entry = entryOf(row, text);
    const json = isStale(entry, at, this.staleAfterMs) ? vmJson(parts, row.last_seen, true) : text.json;
    this.sql.appendEvent.run(row.revision, type, at, row.id, json);
    const vm = JSON.parse(json) as Vm;
    const event: RegistryEvent = { type, revision: row.revision, at: isoTimestamp(at), vm };
    this.commits.afterCommit(() => {
      if (REMOVALS.has(type)) this.reads.mirror.delete(row.id);
      else this.reads.mirror.set(entry);
      this.recentEvents.remember(event);
    });
    return recordOf(vm, row.owner, row.revision);
  }

  /** The row of the VM a change applies to, once the caller's preconditions hold for it. */
  private existing(id: string, options: WriteOptions): VmRow {
    const current = this.current(id);
    if (!current) throw new NotFoundError(id);
    checkWrite(id, current, options);
    return current;
  }
}
