import type { Role, Status, VmUpdate } from '../domain/schemas.js';
import type { VmFields, VmRecord } from '../domain/vm.js';

export interface ListFilter {
  role?: Role;
  status?: Status;
  /** true: only stale VMs; false: leave stale VMs out; undefined: both. */
  stale?: boolean;
}

export interface Listing {
  vms: VmRecord[];
  /** The registry revision this listing reflects: watch from here and nothing is missed. */
  revision: number;
}

export interface WriteOptions {
  /** Only write if the VM's current revision is this one (HTTP If-Match). */
  ifRevision?: number;
}

export interface Heartbeat {
  id: string;
  lastSeen: string;
}

/**
 * The registry's storage. Every change runs in one transaction, which also takes the next
 * registry revision, so that a 2xx always means committed and revisions never tear.
 * Implementations: SQLite (embedded default) and PostgreSQL (several replicas); both must
 * pass the conformance suite in ./conformance.ts.
 */
export interface RegistryStore {
  readonly kind: string;
  /** How long without a heartbeat makes a running VM stale. */
  readonly staleAfterMs: number;
  /** Creates the entry; ConflictError if the id exists. */
  register(vm: VmFields): Promise<VmRecord>;
  /** Creates or replaces the entry, keeping registeredAt of a replaced one. */
  put(vm: VmFields, options?: WriteOptions): Promise<{ vm: VmRecord; created: boolean }>;
  get(id: string): Promise<VmRecord | undefined>;
  /** Newest registration first, then by id. Filters apply exactly as given (see listFilter). */
  list(filter?: ListFilter): Promise<Listing>;
  /** NotFoundError, PreconditionFailedError. Setting status to running refreshes lastSeen. */
  update(id: string, changes: VmUpdate, options?: WriteOptions): Promise<VmRecord>;
  /** Removes the entry and answers its last state. */
  deregister(id: string, options?: WriteOptions): Promise<VmRecord>;
  /** Refreshes lastSeen; NotFoundError for an unknown id. */
  heartbeat(id: string): Promise<Heartbeat>;
  /** Current registry revision. */
  revision(): Promise<number>;
  /** Counts entries; throws if the store does not answer. */
  count(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The seed's rule: asking for running VMs means live ones, so status=running leaves stale
 * VMs out unless the caller asks about staleness explicitly.
 */
export function listFilter(query: ListFilter): ListFilter {
  const stale = query.stale ?? (query.status === 'running' ? false : undefined);
  return { ...query, stale };
}

/** The filter discover applies: running and not stale, of one role. */
export const discoverFilter = (role: Role): ListFilter => ({ role, status: 'running', stale: false });
