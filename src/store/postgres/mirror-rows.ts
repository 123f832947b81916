import type { EventType } from '../../domain/schemas/events.js';
import type { Role, Status } from '../../domain/schemas/vm.js';
import { isoTimestamp, servicesJson, vmJsonParts, vmJsonString } from '../../domain/vm-json.js';
import { entryOf, NOT_YET_BUILT, type MirrorEntry, type MirroredColumns } from '../mirror.js';
import type { StoredVm } from './statements.js';

/**
 * What a replica's mirror is built from: the rows of its load, and the events it applies,
 * whether read from the event log or answered by one of its own writes.
 */

/** One change as the event log holds it; `at` in ms of the database clock. */
export interface LoggedEvent {
  revision: number;
  type: EventType;
  at: number;
  vm: StoredVm;
  owner: string | null;
}

/** A row of SQL.load, as an array. */
export type LoadTuple = [
  id: string,
  role: Role,
  status: Status,
  owner: string | null,
  revision: number,
  registeredAt: number,
  lastSeen: number,
  staleAnnounced: 0 | 1,
  name: string,
  address: string,
  registeredBy: string,
  services: string | null,
  metadata: string | null,
];

/** A loaded VM, whose JSON is built when first read (see MirrorEntry.prepare). */
export function loadedEntry(row: LoadTuple): MirrorEntry {
  const [id, role, status, owner, revision, registered_at, last_seen, stale_announced] = row;
  return entryOf({ id, role, status, owner, revision, registered_at, last_seen, stale_announced }, NOT_YET_BUILT, () => jsonOfRow(row));
}

/** The entry a registration or update leaves, its lastSeen raised to a heartbeat heard before the event arrived. */
export function eventEntry({ vm, type, owner, revision }: LoggedEvent, lastSeen: number): MirrorEntry {
  const parts = vmJsonParts({
    ...vm,
    services: vm.services === undefined ? null : servicesJson(vm.services),
    metadata: vm.metadata === undefined ? null : JSON.stringify(vm.metadata),
  });
  const columns: MirroredColumns = {
    id: vm.id,
    role: vm.role,
    status: vm.status,
    owner,
    revision,
    registered_at: Date.parse(vm.registeredAt),
    last_seen: lastSeen,
    stale_announced: type === 'stale' ? 1 : 0,
  };
  return entryOf(columns, vmJsonString(parts, lastSeen));
}

function jsonOfRow([id, role, status, , , registeredAt, , , name, address, registeredBy, services, metadata]: LoadTuple) {
  return vmJsonParts({
    id,
    name,
    role,
    status,
    address,
    registeredBy,
    registeredAt: isoTimestamp(registeredAt),
    // The column holds the services as the store wrote them; the API's field order is servicesJson's.
    services: services === null ? null : servicesJson(JSON.parse(services)),
    metadata,
  });
}
