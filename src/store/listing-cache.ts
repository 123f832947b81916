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
 * Listing bodies by filter, answered again until the store says something changed (a commit or
 * a heartbeat) or the clock may have turned a VM stale. Pollers and the blocking queries that a
 * change wakes all at once ask for the same listing; this serves them one copy.
 */
export class ListingCache {
  private readonly listings = new Map<string, CachedListing>();
  private bytes = 0;

  /** `maxBytes` bounds the bodies kept, so that a registry-wide listing is not held many times over. */
  constructor(private readonly maxBytes: number) {}

  get(filter: ListFilter, now: number): CachedListing | undefined {
    const cached = this.listings.get(keyOf(filter));
    return cached && now <= cached.until ? cached : undefined;
  }

  set(filter: ListFilter, listing: CachedListing): void {
    if (listing.body.length > this.maxBytes) return;
    if (this.bytes + listing.body.length > this.maxBytes) this.clear();
    const key = keyOf(filter);
    this.bytes += listing.body.length - (this.listings.get(key)?.body.length ?? 0);
    this.listings.set(key, listing);
  }

  clear(): void {
    if (this.listings.size === 0) return;
    this.listings.clear();
    this.bytes = 0;
  }
}
