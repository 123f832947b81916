import { HEALTH_STATUSES } from '../domain/schemas/service-health.js';
import { ROLES, STATUSES } from '../domain/schemas/vm.js';
import { DEFAULT_SORT, SORT_KEYS, type Filter, type Sort, type SortKey } from './fleet.js';

/** Everything a person may want to keep or share about what the page shows. */
export interface View {
  filter: Filter;
  sort: Sort;
  /** The VM whose details are open. */
  vm?: string;
  /** The timeline's own filters. */
  events: { role: Filter['role']; vm: string };
}

const oneOf = <T extends string>(allowed: readonly T[], value: string | null): T | '' =>
  value !== null && (allowed as readonly string[]).includes(value) ? (value as T) : '';

/**
 * Reads a view from the query string: ?role=&status=&stale=&health=&q=&sort=name&desc=1&vm=&events.role=&events.vm=.
 * Values the page does not know are dropped rather than refused: an old or hand-edited link still opens.
 */
export function readView(search: string): View {
  const query = new URLSearchParams(search);
  const key = oneOf(SORT_KEYS, query.get('sort'));
  return {
    filter: {
      role: oneOf(ROLES, query.get('role')),
      status: oneOf(STATUSES, query.get('status')),
      staleness: oneOf(['stale', 'live'] as const, query.get('stale')),
      health: oneOf(HEALTH_STATUSES, query.get('health')),
      search: query.get('q') ?? '',
    },
    sort: key ? { key: key as SortKey, descending: query.get('desc') === '1' } : DEFAULT_SORT,
    vm: query.get('vm') || undefined,
    events: { role: oneOf(ROLES, query.get('events.role')), vm: query.get('events.vm') ?? '' },
  };
}

/** The query string for a view, leaving out whatever is at its default so that links stay short. */
export function writeView(view: View): string {
  const query = new URLSearchParams();
  const { filter, sort } = view;
  if (filter.role) query.set('role', filter.role);
  if (filter.status) query.set('status', filter.status);
  if (filter.staleness) query.set('stale', filter.staleness);
  if (filter.health) query.set('health', filter.health);
  if (filter.search) query.set('q', filter.search);
  if (sort.key !== DEFAULT_SORT.key || sort.descending !== DEFAULT_SORT.descending) {
    query.set('sort', sort.key);
    if (sort.descending) query.set('desc', '1');
  }
  if (view.vm) query.set('vm', view.vm);
  if (view.events.role) query.set('events.role', view.events.role);
  if (view.events.vm) query.set('events.vm', view.events.vm);
  const text = query.toString();
  return text ? `?${text}` : '';
}
