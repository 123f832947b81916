import type { Role, Status, Vm } from '../domain/schemas/vm.js';
import type { VmRecord } from '../domain/vm.js';
import { ListingCache } from './listing-cache.js';
import { builtJson, entryBytes, entryJson, listingBody, Mirror, staleAt, type MirrorEntry } from './mirror.js';
import { recordOf } from './rules.js';
import type { CensusLine, FeedEntry, FeedListing, JsonListing, JsonVm, ListFilter, Listing } from './store.js';

const entryRecord = (entry: MirrorEntry, staleCutoff: number): VmRecord =>
  recordOf(JSON.parse(entryJson(entry, staleCutoff)) as Vm, entry.owner, entry.revision);

/**
 * A VM as the change feed lists it. Its JSON is built when the feed first reads it, which is
 * when the VM changes, if ever: at 100k VMs, building every one at start took seconds. The
 * entry held is the one listed, which the mirror replaces rather than updates (Mirror.set),
 * and builds what was loaded (MirrorEntry.prepare): the JSON is the VM as listed.
 */
class ListedEntry implements FeedEntry {
  readonly id: string;
  readonly role: Role;
  readonly status: Status;
  readonly lastSeen: number;

  constructor(
    private readonly entry: MirrorEntry,
    readonly stale: boolean,
  ) {
    this.id = entry.id;
    this.role = entry.role;
    this.status = entry.status;
    // Copied: a heartbeat moves the lastSeen of the entry in place.
    this.lastSeen = entry.lastSeen;
  }

  get json(): string {
    return builtJson(this.entry);
  }
}

export interface MirrorReadsOptions {
  /** The time staleness is judged at: the store's clock (for PostgreSQL, the database's). */
  now: () => number;
  staleAfterMs: number;
  /** The registry revision the mirror reflects. */
  revision: () => number;
}

/**
 * get, list and census answered from a mirror, for every store that keeps one (SQLite, and
 * each PostgreSQL replica): the store changes the mirror and calls `changed`, this answers.
 */
export class MirrorReads {
  readonly mirror = new Mirror();
  /** Listing bodies kept for the next reader while nothing changes (64 MB: a listing of ~170k VMs). */
  private readonly listings = new ListingCache(64 * 1024 * 1024);

  constructor(private readonly options: MirrorReadsOptions) {}

  /** A change was applied to the mirror: cached listings are out of date. */
  changed(): void {
    this.listings.clear();
  }

  /** A heartbeat: moves the entry's lastSeen, which puts out of date only the listings that may show it. */
  seen(entry: MirrorEntry, at: number): void {
    this.mirror.seen(entry, at);
    this.listings.seen(entry.role, entry.status);
  }

  get(id: string): VmRecord | undefined {
    const entry = this.mirror.get(id);
    return entry && entryRecord(entry, this.staleCutoff());
  }

  getJson(id: string): JsonVm | undefined {
    const entry = this.mirror.get(id);
    return entry && { body: entryBytes(entry, this.staleCutoff()), revision: entry.revision };
  }

  list(filter: ListFilter = {}): Listing {
    const staleCutoff = this.staleCutoff();
    const { entries } = this.mirror.select(filter, staleCutoff);
    return { vms: entries.map((entry) => entryRecord(entry, staleCutoff)), revision: this.options.revision() };
  }

  feedListing(): FeedListing {
    const staleCutoff = this.staleCutoff();
    const entries = this.mirror.select({}, staleCutoff).entries.map((entry) => new ListedEntry(entry, staleAt(entry, staleCutoff)));
    return { entries, revision: this.options.revision() };
  }

  listJson(filter: ListFilter = {}): JsonListing {
    const now = this.options.now();
    const cached = this.listings.get(filter, now);
    if (cached) return cached;
    const staleCutoff = now - this.options.staleAfterMs;
    const { entries, oldestFresh } = this.mirror.select(filter, staleCutoff);
    const revision = this.options.revision();
    const listing = { body: listingBody(entries, revision, staleCutoff), revision, ids: entries.map((entry) => entry.id) };
    this.listings.set(filter, { ...listing, until: oldestFresh + this.options.staleAfterMs });
    return listing;
  }

  census(): CensusLine[] {
    return this.mirror.census(this.staleCutoff());
  }

  /** Running VMs last seen before this are stale now. */
  staleCutoff(): number {
    return this.options.now() - this.options.staleAfterMs;
  }
}
