import type { Role, Status, Vm } from '../domain/schemas/vm.js';
import type { EventType } from '../domain/schemas/events.js';
import type { HealthStatus } from '../domain/schemas/service-health.js';
import { matchesHealth } from '../domain/service-health.js';

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
  /** As ?health= on GET /registry/vms: the worst of a VM's checked services. */
  health: HealthStatus | '';
  search: string;
}

export const SORT_KEYS = ['registered', 'name', 'role', 'status', 'lastSeen'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export interface Sort {
  key: SortKey;
  descending: boolean;
}
/** The registry's own order: newest registration first. */
export const DEFAULT_SORT: Sort = { key: 'registered', descending: true };

const sortValue: Record<SortKey, (e: Entry) => string> = {
  registered: (e) => e.vm.registeredAt,
  name: (e) => e.vm.name.toLowerCase(),
  role: (e) => e.vm.role,
  // A stale running VM sorts apart from the live ones: it is not what "running" promises.
  status: (e) => (e.stale ? 'running (stale)' : e.vm.status),
  lastSeen: (e) => e.vm.lastSeen,
};

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

  /** The entries the filter keeps, in the registry's order, or sorted (ties in the registry's order). */
  select(filter: Filter, sort: Sort = DEFAULT_SORT): Entry[] {
    const search = filter.search.trim().toLowerCase();
    const kept = this.ordered.filter(
      (e) =>
        (!filter.role || e.vm.role === filter.role) &&
        (!filter.status || e.vm.status === filter.status) &&
        (!filter.staleness || e.stale === (filter.staleness === 'stale')) &&
        (!filter.health || matchesHealth(e.vm.services, { health: [filter.health] })) &&
        (!search || e.text.includes(search)),
    );
    if (sort.key === DEFAULT_SORT.key && sort.descending) return kept;
    const value = sortValue[sort.key];
    const direction = sort.descending ? -1 : 1;
    // Array.prototype.sort is stable: equal keys keep the registry's order.
    return kept.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      return x === y ? 0 : x < y ? -direction : direction;
    });
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
