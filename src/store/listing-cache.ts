import type { Role, Status } from '../domain/schemas/vm.js';
import type { ListFilter } from './store.js';

interface CachedListing {
  body: Buffer;
  revision: number;
  ids: readonly string[];
  /** Until when (ms) no VM it shows or leaves out can turn stale by time alone. */
  until: number;
}

const keyOf = (filter: ListFilter) =>
  `${filter.role ?? ''}|${filter.status ?? ''}|${filter.stale ?? ''}|${filter.health?.join() ?? ''}|${filter.service ?? ''}`;

/**
 * Listing bodies by filter, answered again until the store says something changed (a commit,
 * or a heartbeat of a VM the listing may show) or the clock may have turned a VM stale. Pollers
 * and the blocking queries that a change wakes all at once ask for the same listing; this
 * serves them one copy.
 */
export class ListingCache {
  private readonly listings = new Map<string, { filter: ListFilter; listing: CachedListing }>();
  private bytes = 0;

  /** `maxBytes` bounds the bodies kept, so that a registry-wide listing is not held many times over. */
  constructor(private readonly maxBytes: number) {}

  get(filter: ListFilter, now: number): CachedListing | undefined {
    const cached = this.listings.get(keyOf(filter))?.listing;
    return cached && now <= cached.until ? cached : undefined;
  }

  set(filter: ListFilter, listing: CachedListing): void {
    if (listing.body.length > this.maxBytes) return;
    if (this.bytes + listing.body.length > this.maxBytes) this.clear();
    const key = keyOf(filter);
    this.bytes += listing.body.length - (this.listings.get(key)?.listing.body.length ?? 0);
    this.listings.set(key, { filter, listing });
  }

  /**
   * A heartbeat moved the lastSeen of a VM of this role and status: out of date are the listings
   * that show it, and those it may join by turning fresh (stale ones, and those that leave stale
   * VMs out), which is every listing whose role and status admit it. Health filters are not
   * judged: a heartbeat changes no check's verdict, but a listing kept wrongly would be stale,
   * and one dropped wrongly merely rebuilt. At a swarm's rate of heartbeats, clearing every
   * listing on each meant that hardly any discover found its listing still cached.
   */
  seen(role: Role, status: Status): void {
    for (const [key, { filter, listing }] of this.listings) {
      if ((filter.role ?? role) !== role || (filter.status ?? status) !== status) continue;
      this.bytes -= listing.body.length;
      this.listings.delete(key);
    }
  }

  clear(): void {
    if (this.listings.size === 0) return;
    this.listings.clear();
    this.bytes = 0;
  }
}
