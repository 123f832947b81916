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
 * the mark by staysStaleAfterUpdate, the rule the stores apply to their announcement.
 */
export function staleAfterEvent(event: { type: EventType; vm: Vm }, before: StaleStanding | undefined): boolean {
  switch (event.type) {
    case 'stale':
      return true;
    case 'updated':
      return before !== undefined && before.stale && staysStaleAfterUpdate(before, event.vm);
    default:
      return false;
  }
}

/**
 * The one rule for a VM marked stale that an update changes: the mark stays while the VM still
 * runs and its lastSeen did not move. Whether lastSeen moved, not what the update named: a
 * watcher sees only the VM after it, and a clock stepped back can leave lastSeen unchanged by a
 * move to running. Both stores apply it to their announcement (the PostgreSQL store in SQL, in
 * store/postgres/statements.ts), so that a watcher and its registry always agree.
 */
export function staysStaleAfterUpdate<T extends string | number>(
  before: { lastSeen: T },
  after: { status: Vm['status']; lastSeen: T },
): boolean {
  return after.status === 'running' && after.lastSeen === before.lastSeen;
}
