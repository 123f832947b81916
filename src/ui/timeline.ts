import { ago } from '../domain/duration.js';
import type { Filter } from './fleet.js';
import { el } from './format.js';
import { HISTORY, type ChangeEvent } from './live-feed.js';

/** How many changes the timeline keeps: the replayed history plus what arrived since. */
const KEEP = HISTORY * 2;
/** How many of those it draws: a burst of a thousand events must not become a thousand list items. */
const SHOWN = 100;

/**
 * The registry's recent changes, newest first: the server's event log replayed at start, then
 * each change as it streams in. Each entry links to its VM.
 */
export class Timeline {
  /** Oldest first, by revision. */
  private events: ChangeEvent[] = [];
  private readonly revisions = new Set<number>();
  private dirty = true;

  constructor(
    private readonly list: HTMLElement,
    private readonly linkTo: (id: string) => string,
  ) {}

  add(event: ChangeEvent): void {
    // A reconnect may replay what a timeline already holds: each revision is listed once.
    if (this.revisions.has(event.revision)) return;
    this.revisions.add(event.revision);
    // Events come in revision order but for a replay after a reconnect: put those in place.
    let at = this.events.length;
    while (at > 0 && this.events[at - 1].revision > event.revision) at--;
    this.events.splice(at, 0, event);
    if (this.events.length > KEEP) {
      for (const dropped of this.events.splice(0, this.events.length - KEEP)) this.revisions.delete(dropped.revision);
    }
    this.dirty = true;
  }

  show(filter: { role: Filter['role']; vm: string }, now: number, force = false): void {
    if (!this.dirty && !force) return;
    this.dirty = false;
    const vm = filter.vm.trim().toLowerCase();
    const shown = this.events
      .filter((e) => (!filter.role || e.vm.role === filter.role) && (!vm || e.vm.id.toLowerCase().includes(vm) || e.vm.name.toLowerCase().includes(vm)))
      .slice(-SHOWN)
      .reverse();
    if (shown.length === 0) {
      this.list.replaceChildren(el('li', 'muted', this.events.length === 0 ? 'No changes yet.' : 'No changes match.'));
      return;
    }
    this.list.replaceChildren(
      ...shown.map((event) => {
        const item = el('li', `event event-${event.type}`);
        item.dataset.revision = String(event.revision);
        item.dataset.vmId = event.vm.id;
        const time = el('time', 'event-time', ago(event.at, now));
        time.dateTime = event.at;
        time.title = `${event.at} · revision ${event.revision}`;
        const link = el('a', 'event-vm', event.vm.name);
        link.href = this.linkTo(event.vm.id);
        link.dataset.vmId = event.vm.id;
        item.append(el('span', 'event-type', event.type), link, el('span', 'event-role', event.vm.role), time);
        return item;
      }),
    );
  }
}
