import type Database from 'better-sqlite3';
import type { VmFields, VmRecord } from '../../domain/vm.js';
import type { CheckedService } from '../../domain/service-health.js';
import { isoTimestamp, servicesJson, vmJsonParts, type VmJsonText } from '../../domain/vm-json.js';
import type { EventType } from '../../domain/schemas/events.js';
import { entryOf, NOT_YET_BUILT, type Mirror } from '../mirror.js';

/** A row of the vms table. */
export interface VmRow {
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

/** A row of the events table, as eventsSince reads it. */
export interface EventRow {
  revision: number;
  type: EventType;
  at: number;
  vm: string;
}

/** A row as the open-time read answers it: the mirrored columns first, then what only the VM's JSON needs. */
type LoadedTuple = [
  id: string,
  role: VmRow['role'],
  status: VmRow['status'],
  owner: string | null,
  revision: number,
  registered_at: number,
  last_seen: number,
  stale_announced: 0 | 1,
  name: string,
  address: string,
  registered_by: string,
  services: string | null,
  metadata: string | null,
];

/** The statements the store's operations run on the vms, heartbeats and events tables. */
export interface RowStatements {
  get: Database.Statement<[string], VmRow>;
  insert: Database.Statement;
  replace: Database.Statement;
  remove: Database.Statement;
  touch: Database.Statement<[string, number]>;
  eventsAfter: Database.Statement<[number, number], EventRow>;
  oldestEvent: Database.Statement<[], { revision: number | null }>;
  appendEvent: Database.Statement;
}

export function rowStatements(db: Database.Database): RowStatements {
  return {
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
    appendEvent: db.prepare('INSERT INTO events (revision, type, at, vm_id, vm) VALUES (?, ?, ?, ?, ?)'),
  };
}

/** The parts of the VM's JSON, from its row (see vm-json.ts). */
export const jsonOf = (row: Omit<VmRow, 'last_seen' | 'revision' | 'stale_announced' | 'owner'>) =>
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

/** The services column as the store wrote it, health included. */
export const parseServices = (text: string | null): CheckedService[] | undefined => (text === null ? undefined : JSON.parse(text));

/** A new row's columns from the API's fields; the caller sets its times. */
export function rowOf(vm: VmFields, revision: number): Omit<VmRow, 'registered_at' | 'last_seen'> {
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
 * Fills the mirror from the file. Reading every VM here is also the open-time check that the
 * file is readable. Each VM's JSON is built from its row, kept meanwhile, when first asked for,
 * so that a restart over 100k VMs answers its first discover without building them all. The
 * row is read now, with the rest, rather than again then: an entry may be built only after
 * the VM changed (see MirrorEntry.prepare), when the file holds the VM as it is now.
 */
export function loadMirror(db: Database.Database, mirror: Mirror): void {
  const rows = db
    .prepare<[], LoadedTuple>(
      `SELECT id, role, status, owner, revision, registered_at, last_seen, stale_announced, name, address, registered_by, services, metadata
       FROM vms`,
    )
    .raw(true)
    .all();
  // List order, oldest first (the mirror's own), so that loading appends instead of inserting.
  rows.sort((a, b) => a[5] - b[5] || (a[0] > b[0] ? -1 : a[0] < b[0] ? 1 : 0));
  for (const row of rows) {
    const [id, role, status, owner, revision, registered_at, last_seen, stale_announced] = row;
    const columns = { id, role, status, owner, revision, registered_at, last_seen, stale_announced };
    mirror.set(entryOf(columns, NOT_YET_BUILT, () => loadedJson(row)));
  }
  const heartbeats = db.prepare<[], [id: string, lastSeen: number]>('SELECT id, last_seen FROM heartbeats').raw(true);
  for (const [id, lastSeen] of heartbeats.all()) {
    const entry = mirror.get(id);
    if (entry && lastSeen > entry.lastSeen) entry.lastSeen = lastSeen;
  }
}

/** A VM's JSON built from its row as loaded at start. */
function loadedJson([id, role, status, , , registered_at, , , name, address, registered_by, services, metadata]: LoadedTuple): VmJsonText {
  // Services written before the JSON was prepared at write time may hold the client's field order.
  return jsonOf({ id, name, role, status, address, registered_by, registered_at, metadata, services: services === null ? null : servicesJson(JSON.parse(services)) });
}
