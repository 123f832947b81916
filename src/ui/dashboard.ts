import { ROLES, STATUSES, type Role } from '../domain/schemas.js';
import { Api, Unauthorized } from './api.js';
import { DetailsPanel } from './details.js';
import { Fleet, type Filter } from './fleet.js';
import { el } from './format.js';
import { follow, type Connection } from './live-feed.js';
import { VmTable } from './vm-table.js';

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const api = new Api();
const fleet = new Fleet();
const filter: Filter = { role: '', status: '', staleness: '', search: '' };
let selectedId: string | undefined;
let canWrite = false;
let clockOffsetMs = 0;
let connection: Connection = { state: 'connecting' };
let following: AbortController | undefined;

const table = new VmTable(byId('rows'), (id) => {
  selectedId = id;
  scheduleRender();
});
const details = new DetailsPanel(byId('details'), byId<HTMLDialogElement>('confirm'), api, () => {
  selectedId = undefined;
  scheduleRender();
});

// However many events arrive in a burst, the page is drawn at most once per frame.
let renderPending = false;
function scheduleRender(): void {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(render);
}

function render(): void {
  renderPending = false;
  const visible = fleet.select(filter);
  table.show(visible, selectedId);
  details.show(selectedId, selectedId === undefined ? undefined : fleet.get(selectedId), canWrite, clockOffsetMs);
  byId('empty').hidden = visible.length > 0;
  byId('showing').textContent = `showing ${visible.length.toLocaleString()} of ${fleet.size.toLocaleString()}`;
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
    chip.classList.toggle('active', filter.role === role);
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
        : `offline (${connection.reason}), retrying`;
}

function setUpFilters(): void {
  const roleSelect = byId<HTMLSelectElement>('role-filter');
  const statusSelect = byId<HTMLSelectElement>('status-filter');
  const staleSelect = byId<HTMLSelectElement>('stale-filter');
  const search = byId<HTMLInputElement>('search');
  for (const role of ROLES) roleSelect.append(new Option(role, role));
  for (const status of STATUSES) statusSelect.append(new Option(status, status));
  const read = () => {
    filter.role = roleSelect.value as Filter['role'];
    filter.status = statusSelect.value as Filter['status'];
    filter.staleness = staleSelect.value as Filter['staleness'];
    filter.search = search.value;
    scheduleRender();
  };
  for (const control of [roleSelect, statusSelect, staleSelect]) control.addEventListener('change', read);
  search.addEventListener('input', read);
  byId('role-counts').addEventListener('click', (event) => {
    const chip = (event.target as HTMLElement).closest<HTMLElement>('.role-chip');
    if (!chip) return;
    const role = chip.dataset.role as Role;
    roleSelect.value = filter.role === role ? '' : role;
    read();
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && selectedId !== undefined && !byId<HTMLDialogElement>('confirm').open) {
      selectedId = undefined;
      scheduleRender();
    }
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
    scopes = await api.scopes();
  } catch (error) {
    if (error instanceof Unauthorized) {
      const refused = api.hasToken;
      api.forgetToken();
      return askForToken(refused ? error.message : '');
    }
    connection = { state: 'offline', reason: (error as Error).message };
    renderConnection();
    setTimeout(() => void start(), 3000);
    return;
  }
  canWrite = scopes.includes('write') || scopes.includes('admin');
  byId('sign-in').hidden = true;
  byId('main').hidden = false;
  byId('sign-out').hidden = !api.hasToken;
  byId('read-only').hidden = canWrite;
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

setUpFilters();
// Relative times ("12s ago") move on by themselves.
setInterval(() => table.tick(clockOffsetMs), 5000);
void start();
