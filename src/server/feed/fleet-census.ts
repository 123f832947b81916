import type { Role, Status } from '../../domain/schemas.js';
import { staleAfterEvent, type StaleStanding } from '../../domain/stale-after-event.js';
import { censusLines, type CensusLine, type RegistryEvent, type RegistryStore } from '../../store/store.js';
import type { ChangeFeed } from './change-feed.js';

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
  private readonly vms = new Map<string, Standing>();
  private constructor(readonly stop: () => void) {}

  /** Lists the registry once, then follows the feed from the listing's revision on. */
  static async start(store: RegistryStore, feed: ChangeFeed): Promise<FleetCensus> {
    let pending: RegistryEvent[] | undefined = [];
    const census: FleetCensus = new FleetCensus(
      feed.observe((event) => {
        if (pending) pending.push(event);
        else census.apply(event);
      }),
    );
    const all = await store.list();
    const stale = new Set((await store.list({ stale: true })).vms.map((vm) => vm.id));
    for (const vm of all.vms) census.vms.set(vm.id, { role: vm.role, status: vm.status, lastSeen: vm.lastSeen, stale: stale.has(vm.id) });
    for (const event of pending) if (event.revision > all.revision) census.apply(event);
    pending = undefined;
    return census;
  }

  lines(): CensusLine[] {
    const counts = new Map<string, number>();
    for (const vm of this.vms.values()) {
      const key = `${vm.role} ${vm.status} ${vm.stale}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return censusLines((role, status, stale) => counts.get(`${role} ${status} ${stale}`) ?? 0);
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
