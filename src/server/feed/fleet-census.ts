import type { Role, Status } from '../../domain/schemas.js';
import { staleAfterEvent, type StaleStanding } from '../../domain/stale-after-event.js';
import { censusLines, type CensusLine, type RegistryEvent, type RegistryStore } from '../../store/store.js';
import type { ChangeFeed, FeedEvent } from './change-feed.js';

interface Standing extends StaleStanding {
  role: Role;
  status: Status;
}

/**
 * How many VMs there are of each role, status and staleness, for a store that cannot count
 * them itself (see RegistryStore.census): kept from the change feed so
 * that a scrape costs a pass over a small map rather than a read of every entry. The feed
 * carries every replica's changes, so each replica counts the whole registry.
 */
export class FleetCensus {
  private vms = new Map<string, Standing>();
  /** Changes the feed delivers while a listing is being read; those newer than it apply after it. */
  private pending: FeedEvent[] | undefined;
  /** True until counted, and again after a feed reset: the feed skipped changes, so count afresh. */
  private outdated = true;
  private counting: Promise<void> | undefined;
  readonly stop: () => void;

  private constructor(
    private readonly store: RegistryStore,
    feed: ChangeFeed,
  ) {
    this.stop = feed.observe((change) => {
      if (change.type === 'reset') this.outdated = true;
      else if (this.pending) this.pending.push(change);
      else this.apply(change);
    });
  }

  /** Lists the registry once, then follows the feed from the listing's revision on. */
  static async start(store: RegistryStore, feed: ChangeFeed): Promise<FleetCensus> {
    const census = new FleetCensus(store, feed);
    await census.current();
    return census;
  }

  async lines(): Promise<CensusLine[]> {
    await this.current();
    const counts = new Map<string, number>();
    for (const vm of this.vms.values()) {
      const key = `${vm.role} ${vm.status} ${vm.stale}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return censusLines((role, status, stale) => counts.get(`${role} ${status} ${stale}`) ?? 0);
  }

  private current(): Promise<void> {
    if (this.outdated && !this.counting) {
      this.outdated = false;
      this.counting = this.count().finally(() => (this.counting = undefined));
    }
    return this.counting ?? Promise.resolve();
  }

  private async count(): Promise<void> {
    this.pending = [];
    try {
      const all = await this.store.list();
      const stale = new Set((await this.store.list({ stale: true })).vms.map((vm) => vm.id));
      this.vms = new Map(all.vms.map((vm) => [vm.id, { role: vm.role, status: vm.status, lastSeen: vm.lastSeen, stale: stale.has(vm.id) }]));
      for (const event of this.pending) if (event.revision > all.revision) this.apply(event);
    } catch (error) {
      this.outdated = true;
      throw error;
    } finally {
      this.pending = undefined;
    }
  }

  private apply(event: RegistryEvent): void {
    const { vm } = event;
    if (event.type === 'deregistered' || event.type === 'reaped') {
      this.vms.delete(vm.id);
      return;
    }
    const stale = staleAfterEvent(event, this.vms.get(vm.id));
    this.vms.set(vm.id, { role: vm.role, status: vm.status, lastSeen: vm.lastSeen, stale });
  }
}
