import type { EventType } from './schemas/events.js';
import type { Vm } from './schemas/vm.js';

/** What a watcher knew of a VM before an event: enough to carry its stale marker across. */
export interface StaleStanding {
  stale: boolean;
  lastSeen: string;
}

/**
 * Whether a VM is stale once `event` has happened, for a watcher of the event stream.
 * Heartbeats make no events, so staleness cannot be recomputed from the event alone: the
 * sweeper announces it ("stale") and a heartbeat ends it ("recovered"). Any other change keeps
 * the mark only while the VM still runs and its lastSeen did not move, as the store does.
 */
export function staleAfterEvent(event: { type: EventType; vm: Vm }, before: StaleStanding | undefined): boolean {
  switch (event.type) {
    case 'stale':
      return true;
    case 'updated':
      return before !== undefined && before.stale && event.vm.status === 'running' && event.vm.lastSeen === before.lastSeen;
    default:
      return false;
  }
}
