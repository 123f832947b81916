import type { Role, Status, Vm } from '../../domain/schemas/vm.js';
import { hashOf } from '../../domain/service-health.js';
import type { StaleStanding } from '../../domain/stale-after-event.js';
import { isoTimestamp } from '../../domain/vm-json.js';
import type { FeedEntry, FilterStanding } from '../../store/store.js';

/** What the change feed knows of a VM between its changes: what filters look at, its stale marker, and a hash of what answers show of it. */
export interface Standing extends FilterStanding, StaleStanding {
  readonly shown: number;
}

/**
 * A hash of a VM as listings show it, lastSeen aside: heartbeats move lastSeen without a
 * change, and a change that moves only lastSeen (a PATCH to running of a running VM) is no
 * more news to a blocking query than a heartbeat.
 */
function shownHash(vm: Vm, stale: boolean): number {
  const { name, role, status, address, registeredBy, registeredAt, services, metadata } = vm;
  return hashOf(JSON.stringify([name, role, status, address, registeredBy, registeredAt, services, metadata, stale]));
}

/** A VM as an event shows it after the change. */
export function standingOf(vm: Vm, stale: boolean): Standing {
  return { role: vm.role, status: vm.status, lastSeen: vm.lastSeen, services: vm.services, stale, shown: shownHash(vm, stale) };
}

/**
 * A VM the feed listed at start and has seen no change of. Most never change while the
 * process runs, so what needs its JSON (its hash, its services) reads and parses the store's
 * text only when a change asks (FeedEntry.json, the VM as listed): at 100k VMs the feed starts
 * without building or parsing any VM's JSON, and holds a few fields a VM.
 */
class ListedStanding implements Standing {
  private vm: Vm | undefined;

  constructor(private readonly listed: FeedEntry) {}

  get role(): Role {
    return this.listed.role;
  }

  get status(): Status {
    return this.listed.status;
  }

  get stale(): boolean {
    return this.listed.stale;
  }

  get lastSeen(): string {
    return isoTimestamp(this.listed.lastSeen);
  }

  get services(): Vm['services'] {
    return this.parsed().services;
  }

  get shown(): number {
    return shownHash(this.parsed(), this.stale);
  }

  private parsed(): Vm {
    return (this.vm ??= JSON.parse(this.listed.json) as Vm);
  }
}

export function standingsOf(entries: readonly FeedEntry[]): Map<string, Standing> {
  return new Map(entries.map((entry) => [entry.id, new ListedStanding(entry)]));
}
