import { matchesHealth, type CheckedService } from '../domain/service-health.js';
import { ROLES, STATUSES, type Role, type Status } from '../domain/schemas/vm.js';
import { vmJsonSize, vmJsonString, writeVmJson, type VmJsonString, type VmJsonText } from '../domain/vm-json.js';
import { censusLines, type CensusLine, type ListFilter } from './store.js';

/**
 * One VM as a store keeps it in memory: what reads and heartbeats need, with the
 * public JSON prepared (see vm-json.ts) so that answering costs a copy of its text. A
 * heartbeat only sets lastSeen; readers write it over the one the text was built with.
 */
export interface MirrorEntry extends VmJsonString {
  id: string;
  role: Role;
  status: Status;
  owner: string | null;
  revision: number;
  registeredAt: number;
  lastSeen: number;
  staleAnnounced: boolean;
  /**
   * Builds the JSON's text on first use. Entries loaded at start carry this, and no JSON yet,
   * so that a restart over 100k VMs answers its first discover without serializing all. It
   * builds from what was loaded, never from the database as it is when called: the change
   * feed may build an entry only after the VM changed (see Mirror.set), and needs it as it was.
   */
  prepare: (() => VmJsonText) | undefined;
  /** The services, read from the JSON when a health or service filter first asks (null: none). */
  services: CheckedService[] | null | undefined;
}

/** The columns an entry holds besides the VM's JSON, as both stores' rows name them. */
export interface MirroredColumns {
  id: string;
  role: Role;
  status: Status;
  owner: string | null;
  revision: number;
  registered_at: number;
  last_seen: number;
  stale_announced: 0 | 1;
}

/**
 * The one place a mirror entry is made. Every key is written out in one literal, so that all
 * entries share one shape (spreading the JSON in would give each entry a hidden class of its
 * own: 40 MB at 100k VMs).
 */
export function entryOf(row: MirroredColumns, { json, lastSeenAt, size }: VmJsonString, prepare?: () => VmJsonText): MirrorEntry {
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

/** The JSON of an entry loaded at start, until its `prepare` builds it. */
export const NOT_YET_BUILT: VmJsonString = { json: '', lastSeenAt: 0, size: 0 };

function servicesOf(entry: MirrorEntry): CheckedService[] | null {
  if (entry.services === undefined) entry.services = (JSON.parse(entryJson(entry, 0)) as { services?: CheckedService[] }).services ?? null;
  return entry.services;
}

/** The entry, with its JSON built if it was loaded at start and not read since. */
function ready(entry: MirrorEntry): MirrorEntry {
  if (entry.prepare !== undefined) {
    Object.assign(entry, vmJsonString(entry.prepare(), entry.lastSeen));
    entry.prepare = undefined;
  }
  return entry;
}

/** The entry's JSON text as the mirror holds it (lastSeen as when built, stale false), built first if it was loaded at start. */
export const builtJson = (entry: MirrorEntry): string => ready(entry).json;

/** Whether the entry is stale for a reader whose staleness cutoff is `staleCutoff` (now minus the threshold). */
export const staleAt = (entry: MirrorEntry, staleCutoff: number): boolean => entry.status === 'running' && entry.lastSeen < staleCutoff;

/** The entry's JSON as the bytes of an answer of their own. */
export function entryBytes(entry: MirrorEntry, staleCutoff: number): Buffer {
  const stale = staleAt(entry, staleCutoff);
  const bytes = Buffer.allocUnsafe(vmJsonSize(ready(entry), stale));
  writeVmJson(bytes, 0, entry, entry.lastSeen, stale);
  return bytes;
}

export const entryJson = (entry: MirrorEntry, staleCutoff: number): string => entryBytes(entry, staleCutoff).toString();

const OPEN_LISTING = Buffer.from('{"vms":[');
const COMMA = 0x2c;

/** `{"vms":[…],"count":n,"revision":r}` from the entries' texts: one allocation, one write each. */
export function listingBody(entries: readonly MirrorEntry[], revision: number, staleCutoff: number): Buffer {
  const close = `],"count":${entries.length},"revision":${revision}}`;
  let size = OPEN_LISTING.length + Math.max(entries.length - 1, 0) + close.length;
  for (const entry of entries) size += vmJsonSize(ready(entry), staleAt(entry, staleCutoff));
  const body = Buffer.allocUnsafe(size);
  body.set(OPEN_LISTING);
  let at = OPEN_LISTING.length;
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) body[at++] = COMMA;
    const entry = entries[i];
    at = writeVmJson(body, at, entry, entry.lastSeen, staleAt(entry, staleCutoff));
  }
  body.write(close, at, 'latin1');
  return body;
}

/** List order reversed: registeredAt ascending, then id descending. */
const precedes = (a: MirrorEntry, b: MirrorEntry) => a.registeredAt < b.registeredAt || (a.registeredAt === b.registeredAt && a.id > b.id);

/**
 * Entries in reverse list order, so that a new registration (the newest, hence last) is an
 * append rather than a shift of the whole array; readers walk it from the end.
 */
class OrderedEntries {
  readonly items: MirrorEntry[] = [];

  insert(entry: MirrorEntry): void {
    const at = this.firstWhere((item) => precedes(entry, item));
    if (at === this.items.length) this.items.push(entry);
    else this.items.splice(at, 0, entry);
  }

  remove(entry: MirrorEntry): void {
    const at = this.indexOf(entry);
    if (this.items[at] === entry) this.items.splice(at, 1);
  }

  /** Puts `entry` in the place of `old`, which sorts where it does. */
  replace(old: MirrorEntry, entry: MirrorEntry): void {
    const at = this.indexOf(old);
    if (this.items[at] === old) this.items[at] = entry;
  }

  private indexOf(entry: MirrorEntry): number {
    return this.firstWhere((item) => !precedes(item, entry));
  }

  /** Binary search: the first index whose item satisfies `done` (false, then true, along the order). */
  private firstWhere(done: (item: MirrorEntry) => boolean): number {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (done(this.items[mid])) high = mid;
      else low = mid + 1;
    }
    return low;
  }
}

/**
 * Every VM of the database, in memory. A store changes it only after the transaction that
 * made the change has committed, so it never shows a rolled-back write.
 */
export class Mirror {
  private readonly byId = new Map<string, MirrorEntry>();
  private readonly all = new OrderedEntries();
  private readonly byRole = new Map<Role, OrderedEntries>();
  /**
   * For each of the sweeper's questions (staleness not yet announced, or announced), a lower
   * bound on the lastSeen of the running entries it asks about. A cutoff at or before it has no
   * answer, and the sweeper learns so without walking 100k entries every half second.
   */
  private readonly silentFloor = { announced: Infinity, unannounced: Infinity };

  get size(): number {
    return this.byId.size;
  }

  get(id: string): MirrorEntry | undefined {
    return this.byId.get(id);
  }

  /**
   * Adds or replaces an entry. A replaced entry object is left as it was, never updated in
   * place: the change feed keeps the entries it listed at start as its record of what each VM
   * was, and builds one's JSON only once the VM has changed (MirrorReads.feedListing), when it
   * must still be the VM as listed. A replacement that sorts where the old entry did takes its
   * place in the order.
   */
  set(entry: MirrorEntry): void {
    this.lowerSilentFloor(entry);
    const current = this.byId.get(entry.id);
    this.byId.set(entry.id, entry);
    if (current && current.registeredAt === entry.registeredAt && current.role === entry.role) {
      this.all.replace(current, entry);
      this.role(entry.role).replace(current, entry);
      return;
    }
    if (current) this.unindex(current);
    this.all.insert(entry);
    this.role(entry.role).insert(entry);
  }

  /** A heartbeat: only the lastSeen changes. */
  seen(entry: MirrorEntry, at: number): void {
    entry.lastSeen = at;
    // Usually later than before; a clock stepped back must not hide the entry from the sweeper.
    this.lowerSilentFloor(entry);
  }

  delete(id: string): void {
    const current = this.byId.get(id);
    if (!current) return;
    this.byId.delete(id);
    this.unindex(current);
  }

  /**
   * The entries a filter selects, in list order; running entries last seen before `staleCutoff`
   * are stale. `oldestFresh` is the earliest lastSeen among the running, not yet stale entries of
   * the role and status asked for (Infinity when there are none): the first that time alone can
   * turn stale, and so move into or out of the selection, or change its stale flag.
   */
  select(filter: ListFilter, staleCutoff: number): { entries: MirrorEntry[]; oldestFresh: number } {
    const items = filter.role === undefined ? this.all.items : (this.byRole.get(filter.role)?.items ?? []);
    const { status, stale } = filter;
    const byHealth = filter.health !== undefined || filter.service !== undefined;
    const entries: MirrorEntry[] = [];
    let oldestFresh = Infinity;
    for (let i = items.length - 1; i >= 0; i--) {
      const entry = items[i];
      if (status !== undefined && entry.status !== status) continue;
      if (entry.status === 'running') {
        const isStale = entry.lastSeen < staleCutoff;
        if (!isStale && entry.lastSeen < oldestFresh) oldestFresh = entry.lastSeen;
        if (stale !== undefined && isStale !== stale) continue;
      } else if (stale === true) continue;
      if (byHealth && !matchesHealth(servicesOf(entry) ?? undefined, filter)) continue;
      entries.push(entry);
    }
    return { entries, oldestFresh };
  }

  /**
   * The sweeper's question, asked of memory rather than of an index on last_seen that every
   * heartbeat write would have to update: running entries last seen before `cutoff` whose
   * staleness is (`announced`) or is not yet announced, longest silent first.
   */
  silentSince(cutoff: number, announced: boolean, limit: number): MirrorEntry[] {
    const question = announced ? 'announced' : 'unannounced';
    if (cutoff <= this.silentFloor[question]) return [];
    const found: MirrorEntry[] = [];
    let floor = Infinity;
    // The order array rather than the map: a plain array walks several times faster.
    for (const entry of this.all.items) {
      if (entry.status !== 'running' || entry.staleAnnounced !== announced) continue;
      if (entry.lastSeen < floor) floor = entry.lastSeen;
      if (entry.lastSeen < cutoff) found.push(entry);
    }
    // The entries found count too: until the caller's change reaches the mirror they are still what they were.
    this.silentFloor[question] = floor;
    return found.sort((a, b) => a.lastSeen - b.lastSeen).slice(0, limit);
  }

  /** Counts by role, status and staleness in one walk, counting into arrays so that 100k entries allocate nothing. */
  census(staleCutoff: number): CensusLine[] {
    const counts = ROLES.map(() => new Array<number>(STATUSES.length + 1).fill(0));
    // One slot per status, and one more at the end for the running ones gone stale.
    const stale = STATUSES.length;
    for (const entry of this.all.items) {
      const byStatus = counts[ROLES.indexOf(entry.role)];
      if (entry.status === 'running' && entry.lastSeen < staleCutoff) byStatus[stale]++;
      else byStatus[STATUSES.indexOf(entry.status)]++;
    }
    return censusLines((role, status, isStale) => counts[ROLES.indexOf(role)][isStale ? stale : STATUSES.indexOf(status)]);
  }

  private lowerSilentFloor(entry: MirrorEntry): void {
    if (entry.status !== 'running') return;
    const question = entry.staleAnnounced ? 'announced' : 'unannounced';
    if (entry.lastSeen < this.silentFloor[question]) this.silentFloor[question] = entry.lastSeen;
  }

  private unindex(entry: MirrorEntry): void {
    this.all.remove(entry);
    this.role(entry.role).remove(entry);
  }

  private role(role: Role): OrderedEntries {
    let entries = this.byRole.get(role);
    if (!entries) this.byRole.set(role, (entries = new OrderedEntries()));
    return entries;
  }
}
