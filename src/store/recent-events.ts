import type { RegistryEvent } from '../domain/schemas/events.js';

/**
 * The newest committed events, consecutive revisions oldest first, so that the change feed
 * reads what was just committed without a query.
 */
export class RecentEvents {
  private readonly events: RegistryEvent[] = [];

  constructor(private readonly capacity: number) {}

  remember(event: RegistryEvent): void {
    if (this.events.length === this.capacity) this.events.shift();
    this.events.push(event);
  }

  /** The events after revision `since`, at most `limit`; undefined when the window does not reach back that far. */
  after(since: number, limit: number): RegistryEvent[] | undefined {
    const events = this.events;
    if (events.length === 0 || since < events[0].revision - 1) return undefined;
    const from = since - events[0].revision + 1;
    return events.slice(from, from + limit);
  }
}
