import type { Role, Status, Vm } from '../domain/schemas.js';
import type { EventType } from '../store/store.js';

export interface Entry {
  vm: Vm;
  /** As the registry judged it when it listed the VM or sent its latest event. */
  stale: boolean;
  /** Lower-cased text the search box matches against, built once per change. */
  text: string;
}

export interface Filter {
  role: Role | '';
  status: Status | '';
  staleness: 'stale' | 'live' | '';
  search: string;
}

export interface RoleCount {
  total: number;
  stale: number;
}

// The registry's own order: newest registration first, then by id.
const before = (a: Vm, b: Vm) => (a.registeredAt !== b.registeredAt ? a.registeredAt > b.registeredAt : a.id < b.id);

function entry(vm: Vm): Entry {
  const services = (vm.services ?? []).map((s) => `${s.name}:${s.port}`).join(' ');
  const text = [vm.id, vm.name, vm.role, vm.status, vm.address, vm.registeredBy, services, JSON.stringify(vm.metadata ?? {})];
  return { vm, stale: vm.stale, text: text.join('\n').toLowerCase() };
}

/**
 * The dashboard's copy of the registry: a listing, then every event applied to it. Each
 * change replaces one entry and moves it in a sorted array (binary search), so an event
 * costs a few microseconds however many VMs there are.
 */
export class Fleet {
  private readonly byId = new Map<string, Entry>();
  private ordered: Entry[] = [];

  load(vms: Vm[]): void {
    this.byId.clear();
    this.ordered = vms.map(entry);
    this.ordered.sort((a, b) => (before(a.vm, b.vm) ? -1 : 1));
    for (const e of this.ordered) this.byId.set(e.vm.id, e);
  }

  apply(event: { type: EventType; vm: Vm }): void {
    const previous = this.byId.get(event.vm.id);
    if (previous) this.ordered.splice(this.indexOf(previous.vm), 1);
    if (event.type === 'deregistered' || event.type === 'reaped') {
      this.byId.delete(event.vm.id);
      return;
    }
    const next = entry(event.vm);
    this.byId.set(event.vm.id, next);
    this.ordered.splice(this.indexOf(event.vm), 0, next);
  }

  get(id: string): Entry | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.ordered.length;
  }

  select(filter: Filter): Entry[] {
    const search = filter.search.trim().toLowerCase();
    return this.ordered.filter(
      (e) =>
        (!filter.role || e.vm.role === filter.role) &&
        (!filter.status || e.vm.status === filter.status) &&
        (!filter.staleness || e.stale === (filter.staleness === 'stale')) &&
        (!search || e.text.includes(search)),
    );
  }

  countByRole(): Map<Role, RoleCount> {
    const counts = new Map<Role, RoleCount>();
    for (const { vm, stale } of this.ordered) {
      const count = counts.get(vm.role) ?? { total: 0, stale: 0 };
      count.total++;
      if (stale) count.stale++;
      counts.set(vm.role, count);
    }
    return counts;
  }

  /** Where `vm` is, or would go, in the order. */
  private indexOf(vm: Vm): number {
    let low = 0;
    let high = this.ordered.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (before(this.ordered[middle].vm, vm)) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
