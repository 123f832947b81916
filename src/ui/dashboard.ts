import { formatDuration } from '../domain/duration.js';
import { HEALTH_STATUSES } from '../domain/schemas/service-health.js';
import { ROLES, STATUSES, type Role } from '../domain/schemas/vm.js';
import { Api, Unauthorized } from './api.js';
import { DetailsPanel, type Access } from './details.js';
import { Fleet, type SortKey } from './fleet.js';
import { el } from './format.js';
import { follow, type Connection } from './live-feed.js';
import { Timeline } from './timeline.js';
import { readView, writeView, type View } from './view-state.js';
import { VmTable } from './vm-table.js';

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const api = new Api();
const fleet = new Fleet();
/** What is shown, as the URL says it: a reload, a shared link and back/forward all land here. */
let view: View = readView(location.search);
let cursorId: string | undefined;
let access: Access = 'none';
let clockOffsetMs = 0;
let connection: Connection = { state: 'connecting' };
let following: AbortController | undefined;

const linkTo = (id: string) => writeView({ ...view, vm: id }) || '?';
const table = new VmTable(byId('rows'), (id) => open(id));
const details = new DetailsPanel(byId('details'), byId<HTMLDialogElement>('confirm'), api, () => open(undefined));
const timeline = new Timeline(byId('events'), linkTo);

/**
 * A new view: pushed as a history entry for steps a person would go back over (opening a VM,
 * a filter, a sort), replaced while typing in a search box.
 */
function setView(next: Partial<View>, mode: 'push' | 'replace' = 'push'): void {
  view = { ...view, ...next };
  const url = `${location.pathname}${writeView(view)}`;
  if (url !== `${location.pathname}${location.search}`) history[mode === 'push' ? 'pushState' : 'replaceState'](null, '', url);
  syncControls();
  scheduleRender();
}

function open(id: string | undefined): void {
  if (id !== undefined) cursorId = id;
  setView({ vm: id });
  if (id === undefined) byId('rows').focus();
}

// However many events arrive in a burst, the page is drawn at most once per frame.
let renderPending = false;
function scheduleRender(): void {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(render);
}

function render(): void {
  renderPending = false;
  const visible = fleet.select(view.filter, view.sort);
  table.show(visible, view.vm, cursorId);
  details.show(view.vm, view.vm === undefined ? undefined : fleet.get(view.vm), access, clockOffsetMs);
  document.body.classList.toggle('panel-open', view.vm !== undefined);
  byId('empty').hidden = visible.length > 0;
  byId('showing').textContent = `showing ${visible.length.toLocaleString()} of ${fleet.size.toLocaleString()}`;
  timeline.show(view.events, Date.now() + clockOffsetMs);
  renderCounts();
  renderConnection();
}

function renderCounts(): void {
  const counts = fleet.countByRole();
  let stale = 0;
  const chips = ROLES.map((role) => {
    const count = counts.get(role) ?? { total: 0, stale: 0 };
    stale += count.stale;
    const chip = el('button', `role-chip role-${role}`);
    chip.type = 'button';
    chip.dataset.role = role;
    chip.classList.toggle('active', view.filter.role === role);
    chip.append(el('span', 'chip-role', role), el('span', 'chip-count', count.total.toLocaleString()));
    if (count.stale > 0) chip.append(el('span', 'chip-stale', `${count.stale} stale`));
    return chip;
  });
  byId('role-counts').replaceChildren(...chips);
  byId('totals').textContent = `${fleet.size.toLocaleString()} VMs · ${stale.toLocaleString()} stale`;
}

function renderConnection(): void {
  const pill = byId('connection');
  pill.className = `connection ${connection.state}`;
  pill.textContent =
    connection.state === 'live'
      ? `live · revision ${connection.revision}`
      : connection.state === 'connecting'
        ? 'connecting…'
        : connection.state === 're-listing'
          ? `re-listing (${connection.reason})`
          : `disconnected (${connection.reason}), retrying`;
}

/** The cluster as /health tells it: store, replica, version, uptime and the event-log window. */
async function refreshCluster(): Promise<void> {
  try {
    const health = await api.health();
    const store = health.store.kind === 'postgres' ? 'PostgreSQL' : health.store.kind === 'sqlite' ? 'SQLite file' : health.store.kind;
    const parts = [
      `${store}${health.store.ok ? '' : ' (not answering)'}`,
      health.replica ? `replica ${health.replica}` : '',
      `v${health.version}`,
      `up ${formatDuration(Math.round(health.uptime) * 1000)}`,
      health.eventRetention ? `event log: last ${health.eventRetention.toLocaleString()} changes` : '',
    ].filter(Boolean);
    const cluster = byId('cluster');
    cluster.textContent = parts.join(' · ');
    cluster.classList.toggle('degraded', health.status !== 'ok');
    cluster.title = `stale after ${formatDuration(health.staleAfterMs)}; revision ${health.revision}`;
  } catch (error) {
    byId('cluster').textContent = `health unknown: ${(error as Error).message}`;
  }
}

/** Puts the URL's view into the controls, which must always show what the page shows. */
function syncControls(): void {
  byId<HTMLSelectElement>('role-filter').value = view.filter.role;
  byId<HTMLSelectElement>('status-filter').value = view.filter.status;
  byId<HTMLSelectElement>('stale-filter').value = view.filter.staleness;
  byId<HTMLSelectElement>('health-filter').value = view.filter.health;
  const search = byId<HTMLInputElement>('search');
  if (search.value !== view.filter.search) search.value = view.filter.search;
  byId<HTMLSelectElement>('sort').value = `${view.sort.key}:${view.sort.descending ? 'desc' : 'asc'}`;
  for (const button of document.querySelectorAll<HTMLElement>('.thead .sort')) {
    const active = button.dataset.sort === view.sort.key;
    button.classList.toggle('active', active);
    button.parentElement!.setAttribute('aria-sort', active ? (view.sort.descending ? 'descending' : 'ascending') : 'none');
  }
  byId<HTMLSelectElement>('events-role').value = view.events.role;
  const eventsVm = byId<HTMLInputElement>('events-vm');
  if (eventsVm.value !== view.events.vm) eventsVm.value = view.events.vm;
  timeline.show(view.events, Date.now() + clockOffsetMs, true);
}

function setUpControls(): void {
  const roleSelect = byId<HTMLSelectElement>('role-filter');
  const statusSelect = byId<HTMLSelectElement>('status-filter');
  const staleSelect = byId<HTMLSelectElement>('stale-filter');
  const healthSelect = byId<HTMLSelectElement>('health-filter');
  const search = byId<HTMLInputElement>('search');
  const sort = byId<HTMLSelectElement>('sort');
  const eventsRole = byId<HTMLSelectElement>('events-role');
  const eventsVm = byId<HTMLInputElement>('events-vm');
  for (const role of ROLES) {
    roleSelect.append(new Option(role, role));
    eventsRole.append(new Option(role, role));
  }
  for (const status of STATUSES) statusSelect.append(new Option(status, status));
  for (const health of HEALTH_STATUSES) healthSelect.append(new Option(health, health));
  const readFilter = (mode: 'push' | 'replace') =>
    setView(
      {
        filter: {
          role: roleSelect.value as View['filter']['role'],
          status: statusSelect.value as View['filter']['status'],
          staleness: staleSelect.value as View['filter']['staleness'],
          health: healthSelect.value as View['filter']['health'],
          search: search.value,
        },
      },
      mode,
    );
  for (const control of [roleSelect, statusSelect, staleSelect, healthSelect]) control.addEventListener('change', () => readFilter('push'));
  search.addEventListener('input', () => readFilter('replace'));
  sort.addEventListener('change', () => {
    const [key, direction] = sort.value.split(':');
    setView({ sort: { key: key as SortKey, descending: direction === 'desc' } });
  });
  document.querySelector('.thead')!.addEventListener('click', (event) => {
    const button = (event.target as HTMLElement).closest<HTMLElement>('.sort');
    if (!button) return;
    const key = button.dataset.sort as SortKey;
    // The first click sorts the way one usually wants (names A–Z, times newest first), the next reverses.
    const descending = view.sort.key === key ? !view.sort.descending : key === 'registered' || key === 'lastSeen';
    setView({ sort: { key, descending } });
  });
  eventsRole.addEventListener('change', () => setView({ events: { ...view.events, role: eventsRole.value as Role | '' } }));
  eventsVm.addEventListener('input', () => setView({ events: { ...view.events, vm: eventsVm.value } }, 'replace'));
  byId('events').addEventListener('click', (event) => {
    const link = (event.target as HTMLElement).closest<HTMLAnchorElement>('a.event-vm');
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    open(link.dataset.vmId);
  });
  byId('role-counts').addEventListener('click', (event) => {
    const chip = (event.target as HTMLElement).closest<HTMLElement>('.role-chip');
    if (!chip) return;
    const role = chip.dataset.role as Role;
    roleSelect.value = view.filter.role === role ? '' : role;
    readFilter('push');
  });
  byId('rows').addEventListener('keydown', (event) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[event.key];
    if (step !== undefined) {
      event.preventDefault();
      cursorId = table.neighbour(cursorId, step);
      if (cursorId !== undefined) table.reveal(cursorId);
      scheduleRender();
    } else if (event.key === 'Enter' && cursorId !== undefined) {
      event.preventDefault();
      open(cursorId);
    }
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && view.vm !== undefined && !byId<HTMLDialogElement>('confirm').open) open(undefined);
  });
  window.addEventListener('popstate', () => {
    view = readView(location.search);
    if (view.vm !== undefined) cursorId = view.vm;
    syncControls();
    scheduleRender();
  });
}

function askForToken(message: string): void {
  following?.abort();
  byId('main').hidden = true;
  byId('sign-out').hidden = true;
  byId('sign-in').hidden = false;
  byId('sign-in-error').textContent = message;
  byId<HTMLInputElement>('token').focus();
}

async function start(): Promise<void> {
  let scopes: string[];
  try {
    scopes = (await api.whoami()).scopes;
  } catch (error) {
    if (error instanceof Unauthorized) {
      const refused = api.hasToken;
      api.forgetToken();
      return askForToken(refused ? error.message : '');
    }
    connection = { state: 'disconnected', reason: (error as Error).message };
    renderConnection();
    setTimeout(() => void start(), 3000);
    return;
  }
  access = scopes.includes('admin') ? 'all' : scopes.includes('write') ? 'own' : 'none';
  byId('sign-in').hidden = true;
  byId('main').hidden = false;
  byId('sign-out').hidden = !api.hasToken;
  byId('read-only').hidden = access !== 'none';
  following = new AbortController();
  void follow(
    api,
    {
      snapshot(listing) {
        fleet.load(listing.vms);
        clockOffsetMs = listing.clockOffsetMs;
        scheduleRender();
      },
      change(event) {
        fleet.apply(event);
        timeline.add(event);
        scheduleRender();
      },
      history(event) {
        timeline.add(event);
        scheduleRender();
      },
      connection(next) {
        connection = next;
        scheduleRender();
      },
      unauthorized(message) {
        api.forgetToken();
        askForToken(message);
      },
    },
    following.signal,
  );
}

byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>('token');
  const token = input.value.trim();
  if (!token) return;
  api.setToken(token);
  input.value = '';
  void start();
});
byId('sign-out').addEventListener('click', () => {
  api.forgetToken();
  fleet.load([]);
  scheduleRender();
  askForToken('');
});

setUpControls();
syncControls();
if (view.vm !== undefined) cursorId = view.vm;
// Relative times ("12s ago") move on by themselves; the cluster's uptime and state with them.
setInterval(() => {
  table.tick(clockOffsetMs);
  timeline.show(view.events, Date.now() + clockOffsetMs, true);
}, 5000);
void refreshCluster();
setInterval(() => void refreshCluster(), 10_000);
void start();
