import type { Static } from '@sinclair/typebox';
import type { MirrorLagSchema } from '../domain/schemas/health.js';
import { ROLES, STATUSES, type Role, type Status, type VmUpdate } from '../domain/schemas/vm.js';
import type { RegistryEvent } from '../domain/schemas/events.js';
import type { HealthStatus, ServiceHealth } from '../domain/schemas/service-health.js';
import { matchesHealth, type HealthFilter, type HealthTarget } from '../domain/service-health.js';
import type { VmFields, VmRecord } from '../domain/vm.js';

/** Role, status and staleness, and the health rule of ../domain/service-health.ts (matchesHealth). */
export interface ListFilter extends HealthFilter {
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

/**
 * A VM as the change feed first learns of it (ChangeFeed.start): what filters read, and its
 * JSON as the store keeps it, shared rather than copied, which the feed reads only if the VM
 * changes, and then still as it was when listed (a store may build it only then). That text
 * shows lastSeen and stale as they were when it was built: the feed takes both from the other
 * fields.
 */
export interface FeedEntry {
  readonly id: string;
  readonly role: Role;
  readonly status: Status;
  readonly stale: boolean;
  readonly lastSeen: number;
  readonly json: string;
}

export interface FeedListing {
  entries: FeedEntry[];
  revision: number;
}

/** A listing as the API's exact answer, UTF-8 JSON: `{"vms":[…],"count":n,"revision":r}`. */
export interface JsonListing {
  body: Buffer;
  revision: number;
  /**
   * The listed VMs' ids, in the body's order: a woken blocking query checks its changes against
   * them, where parsing the body (~400 KB for 1,000 VMs) once per waiter blocked the server.
   */
  ids: readonly string[];
}

/** One VM as the API's exact answer, UTF-8 JSON, with the revision of its last change (its ETag). */
export interface JsonVm {
  body: Buffer;
  revision: number;
}

/** How far a replica's in-memory copy of the registry trails the database it follows (see MirrorLagSchema). */
export type MirrorLag = Static<typeof MirrorLagSchema>;

export interface WriteOptions {
  /** Only write if the VM's current revision is this one (HTTP If-Match). */
  ifRevision?: number;
  /** Only write if the VM was registered by this token (a write-scoped caller); else ForbiddenError. */
  owner?: string;
}

/** An entry carried over from another registry, with its own timestamps (ms since the epoch). */
export interface ImportedVm extends VmFields {
  registeredAt: number;
  lastSeen: number;
}

export interface ImportResult {
  created: number;
  replaced: number;
  /** Registry revision after the import. */
  revision: number;
}

export interface SweepOptions {
  /** Deregister VMs that have been stale this long; undefined: never. */
  reapAfterMs?: number;
  /** At most this many transitions per sweep, so one sweep never holds the store for long. */
  limit?: number;
}

export interface Heartbeat {
  id: string;
  lastSeen: string;
}

/**
 * The registry's storage. Every change runs in one transaction, which also takes the next
 * registry revision, so that a 2xx always means committed and revisions never tear.
 * Implementations: SQLite (embedded default) and PostgreSQL (several replicas); both must
 * pass the conformance suite in test/store/conformance.ts.
 */
export interface RegistryStore {
  readonly kind: string;
  /** How long without a heartbeat makes a running VM stale. */
  readonly staleAfterMs: number;
  /** Creates the entry; ConflictError if the id exists. */
  register(vm: VmFields): Promise<VmRecord>;
  /** Creates or replaces the entry, keeping registeredAt and the owner of a replaced one. */
  put(vm: VmFields, options?: WriteOptions): Promise<{ vm: VmRecord; created: boolean }>;
  get(id: string): Promise<VmRecord | undefined>;
  /** Newest registration first, then by id. Filters apply exactly as given (see listFilter). */
  list(filter?: ListFilter): Promise<Listing>;
  /** Every VM as the change feed first needs it, without parsing any VM's JSON (see FeedEntry). */
  feedListing(): Promise<FeedListing>;
  /**
   * list and get answered as the response text itself, which both stores keep serialized in
   * their mirror. Same filters and order as list and get.
   */
  listJson(filter?: ListFilter): Promise<JsonListing>;
  getJson(id: string): Promise<JsonVm | undefined>;
  /**
   * How many VMs of each role, status and staleness: both stores count their mirror, so the
   * server keeps no per-VM census of its own beside it.
   */
  census(): Promise<CensusLine[]>;
  /** Optional: how far this replica's copy of the registry trails the shared database (PostgreSQL). */
  mirrorLag?(): MirrorLag;
  /** NotFoundError, PreconditionFailedError. Setting status to running refreshes lastSeen. */
  update(id: string, changes: VmUpdate, options?: WriteOptions): Promise<VmRecord>;
  /** Removes the entry and answers its last state. */
  deregister(id: string, options?: WriteOptions): Promise<VmRecord>;
  /**
   * Creates or replaces every entry in one transaction, keeping the given registeredAt and
   * lastSeen (unlike put). Each change gets its own revision and event, as any write does.
   */
  import(vms: ImportedVm[]): Promise<ImportResult>;
  /**
   * Refreshes lastSeen; NotFoundError for an unknown id. No revision, unless the VM had been
   * announced stale: then it is recovered, which is a change like any other.
   */
  heartbeat(id: string, options?: Pick<WriteOptions, 'owner'>): Promise<Heartbeat>;
  /**
   * Announces VMs that crossed the stale threshold (event "stale") and removes those stale
   * for longer than reapAfterMs ("reaped"). Answers how many events it wrote.
   */
  sweep(options?: SweepOptions): Promise<number>;
  /**
   * Events after revision `since`, oldest first, at most `limit`. GoneError when `since` is
   * older than the retained log or newer than the registry: the caller must re-list.
   */
  eventsSince(since: number, limit?: number): Promise<RegistryEvent[]>;
  /**
   * Calls the listener after changes commit (perhaps once for several, perhaps from another
   * replica). It carries no data: read eventsSince to learn what changed. Answers unsubscribe.
   */
  onChange(listener: () => void): () => void;
  /** Current registry revision. */
  revision(): Promise<number>;
  /**
   * Stores a health check's verdict on one service, as an `updated` change with its revision
   * and event, but only when it changes the service's status: answers undefined, writing
   * nothing, when the status is the stored one or the VM no longer has that target.
   */
  recordHealth(id: string, target: HealthTarget, health: ServiceHealth): Promise<VmRecord | undefined>;
  /** Counts entries; throws if the store does not answer. */
  count(): Promise<number>;
  close(): Promise<void>;
}

/**
 * agent-services' rule: asking for running VMs means live ones, so status=running leaves stale
 * VMs out unless the caller asks about staleness explicitly.
 */
export function listFilter(query: ListFilter): ListFilter {
  const stale = query.stale ?? (query.status === 'running' ? false : undefined);
  return { ...query, stale };
}

/** What discover is answered from: running and not stale, of one role, healthy enough (and offering a service). */
export const discoverFilter = (role: Role, health: Pick<ListFilter, 'health' | 'service'> = {}): ListFilter => ({
  role,
  status: 'running',
  stale: false,
  ...health,
});

/** What a filter looks at of a VM: its role, status, staleness and services. */
export interface FilterStanding {
  role: Role;
  status: Status;
  stale: boolean;
  services?: VmFields['services'];
}

/**
 * The filter rule on one VM whose staleness is already judged, for those that follow changes
 * (the change feed waking blocking queries) rather than read the store.
 */
export function matchesFilter(filter: ListFilter, vm: FilterStanding): boolean {
  return (
    (filter.role === undefined || vm.role === filter.role) &&
    (filter.status === undefined || vm.status === filter.status) &&
    (filter.stale === undefined || vm.stale === filter.stale) &&
    matchesHealth(vm.services, filter)
  );
}

/** With health checks on, discover leaves out what is known to be broken; a VM not checked yet is found at once. */
export const DISCOVERABLE: readonly HealthStatus[] = ['passing', 'unknown'];

/** How many VMs share a role, status and staleness (stale: running and silent past the threshold). */
export interface CensusLine {
  role: Role;
  status: Status;
  stale: boolean;
  count: number;
}

/** Every role and status (running both fresh and stale), zeros included, so that series do not vanish when a count drops to none. */
export function censusLines(count: (role: Role, status: Status, stale: boolean) => number): CensusLine[] {
  const lines: CensusLine[] = [];
  for (const role of ROLES) {
    for (const status of STATUSES) {
      for (const stale of status === 'running' ? [false, true] : [false]) lines.push({ role, status, stale, count: count(role, status, stale) });
    }
  }
  return lines;
}
