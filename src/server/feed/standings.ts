import type { Vm } from '../../domain/schemas/vm.js';
import { hashOf } from '../../domain/service-health.js';
import type { StaleStanding } from '../../domain/stale-after-event.js';
import type { VmRecord } from '../../domain/vm.js';
import type { FilterStanding } from '../../store/store.js';

/** What the change feed knows of a VM between its changes: what filters look at, its stale marker, and a hash of what answers show of it. */
export interface Standing extends FilterStanding, StaleStanding {
  shown: number;
}

/**
 * A hash of a VM as listings show it, lastSeen aside: heartbeats move lastSeen without a
 * change, and a change that moves only lastSeen (a PATCH to running of a running VM) is no
 * more news to a blocking query than a heartbeat.
 */
export function shownHash(vm: Vm, stale: boolean): number {
  const { name, role, status, address, registeredBy, registeredAt, services, metadata } = vm;
  return hashOf(JSON.stringify([name, role, status, address, registeredBy, registeredAt, services, metadata, stale]));
}

export function standingOf(vm: Vm, stale: boolean): Standing {
  return { role: vm.role, status: vm.status, lastSeen: vm.lastSeen, services: vm.services, stale, shown: shownHash(vm, stale) };
}

/**
 * The standings of a whole listing. The VMs of a swarm mostly offer the same services, so
 * equal lists share one array (at 100k VMs, ~10 MB less for the life of the process). Shared
 * within this listing only: standings are replaced, never changed, so no array is written
 * through another VM's standing, and the arrays go with the last VM that holds them.
 */
export function standingsOf(vms: readonly VmRecord[]): Map<string, Standing> {
  const servicesByText = new Map<string, Vm['services']>();
  const standings = new Map<string, Standing>();
  for (const vm of vms) {
    const standing = standingOf(vm, vm.stale);
    if (standing.services !== undefined) {
      const text = JSON.stringify(standing.services);
      const shared = servicesByText.get(text);
      if (shared) standing.services = shared;
      else servicesByText.set(text, standing.services);
    }
    standings.set(vm.id, standing);
  }
  return standings;
}
