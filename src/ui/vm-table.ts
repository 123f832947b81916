import type { Entry } from './fleet.js';
import { ago } from '../domain/duration.js';
import { el, healthDot } from './format.js';

/** Rows drawn beyond the visible ones, so that fast scrolling shows no blank edge. */
const OVERSCAN = 8;

interface Row {
  element: HTMLElement;
  cells: {
    status: HTMLElement;
    stale: HTMLElement;
    name: HTMLElement;
    id: HTMLElement;
    role: HTMLElement;
    address: HTMLElement;
    services: HTMLElement;
    lastSeen: HTMLElement;
    registered: HTMLElement;
  };
  /** What the row shows now: unchanged entries (the same object) are not redrawn. */
  entry?: Entry;
  stamp?: number;
}

/**
 * A windowed table: however many VMs match, only the rows in view (plus a margin) exist in
 * the DOM, positioned inside a spacer as tall as the whole list. A change redraws only the
 * rows whose entry changed; scrolling reuses the same row elements.
 */
export class VmTable {
  private entries: Entry[] = [];
  private readonly spacer: HTMLElement;
  private readonly rows: Row[] = [];
  private selectedId: string | undefined;
  /** The row the arrow keys are on. */
  private cursorId: string | undefined;
  /** From the stylesheet (--row): a phone shows each VM as a taller two-line card. */
  private rowHeight = 44;
  private clock = { offsetMs: 0, stamp: 0 };
  private scheduled = false;

  constructor(
    private readonly viewport: HTMLElement,
    private readonly onSelect: (id: string) => void,
  ) {
    this.spacer = el('div', 'spacer');
    viewport.append(this.spacer);
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => {
      this.rowHeight = parseFloat(getComputedStyle(viewport).getPropertyValue('--row')) || 44;
      this.spacer.style.height = `${this.entries.length * this.rowHeight}px`;
      this.schedule();
    }).observe(viewport);
    this.spacer.addEventListener('click', (event) => {
      const row = (event.target as HTMLElement).closest<HTMLElement>('.row');
      if (row?.dataset.vmId) this.onSelect(row.dataset.vmId);
    });
  }

  show(entries: Entry[], selectedId: string | undefined, cursorId: string | undefined): void {
    this.entries = entries;
    this.selectedId = selectedId;
    this.cursorId = cursorId;
    this.spacer.style.height = `${entries.length * this.rowHeight}px`;
    this.draw();
  }

  /** The id `step` rows from `id` among those shown (the first one when `id` is not shown). */
  neighbour(id: string | undefined, step: number): string | undefined {
    if (this.entries.length === 0) return undefined;
    const at = id === undefined ? -1 : this.entries.findIndex((e) => e.vm.id === id);
    const index = at === -1 ? 0 : Math.min(this.entries.length - 1, Math.max(0, at + step));
    return this.entries[index].vm.id;
  }

  /** Scrolls just enough for the row of `id` to be in view. */
  reveal(id: string): void {
    const index = this.entries.findIndex((e) => e.vm.id === id);
    if (index === -1) return;
    const top = index * this.rowHeight;
    if (top < this.viewport.scrollTop) this.viewport.scrollTop = top;
    else if (top + this.rowHeight > this.viewport.scrollTop + this.viewport.clientHeight) {
      this.viewport.scrollTop = top + this.rowHeight - this.viewport.clientHeight;
    }
  }

  /** Redraws every visible row: relative times have moved. */
  tick(clockOffsetMs: number): void {
    this.clock = { offsetMs: clockOffsetMs, stamp: this.clock.stamp + 1 };
    this.draw();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.draw();
    });
  }

  private draw(): void {
    const height = this.rowHeight;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / height) - OVERSCAN);
    const last = Math.min(this.entries.length, Math.ceil((this.viewport.scrollTop + this.viewport.clientHeight) / height) + OVERSCAN);
    while (this.rows.length < last - first) this.rows.push(this.createRow());
    const now = Date.now() + this.clock.offsetMs;
    this.rows.forEach((row, slot) => {
      const index = first + slot;
      const entry = this.entries[index];
      row.element.hidden = entry === undefined;
      if (!entry) {
        row.entry = undefined;
        delete row.element.dataset.vmId;
        return;
      }
      row.element.style.transform = `translateY(${index * height}px)`;
      row.element.classList.toggle('selected', entry.vm.id === this.selectedId);
      row.element.classList.toggle('cursor', entry.vm.id === this.cursorId);
      row.element.setAttribute('aria-selected', String(entry.vm.id === this.cursorId));
      if (row.entry === entry && row.stamp === this.clock.stamp) return;
      row.entry = entry;
      row.stamp = this.clock.stamp;
      this.fill(row, entry, now);
    });
  }

  private fill(row: Row, { vm, stale }: Entry, now: number): void {
    const { cells } = row;
    row.element.dataset.vmId = vm.id;
    row.element.classList.toggle('is-stale', stale);
    cells.status.textContent = vm.status;
    // A stale running VM must not show running's green dot: it is not answering its heartbeats.
    cells.status.className = `status status-${stale ? 'stale' : vm.status}`;
    cells.stale.hidden = !stale;
    cells.name.textContent = vm.name;
    cells.id.textContent = vm.id;
    cells.role.textContent = vm.role;
    cells.role.className = `role role-${vm.role}`;
    cells.address.textContent = vm.address;
    const services = (vm.services ?? []).flatMap((s, i) => {
      const dot = healthDot(s);
      return [...(i > 0 ? [', '] : []), ...(dot ? [dot] : []), `${s.name}:${s.port}`];
    });
    cells.services.replaceChildren(...(services.length > 0 ? services : ['—']));
    cells.lastSeen.textContent = ago(vm.lastSeen, now);
    cells.lastSeen.title = vm.lastSeen;
    cells.registered.textContent = ago(vm.registeredAt, now);
    cells.registered.title = vm.registeredAt;
  }

  private createRow(): Row {
    const element = el('div', 'row');
    element.setAttribute('role', 'row');
    const cell = (className: string) => {
      const c = el('div', `cell ${className}`);
      c.setAttribute('role', 'cell');
      return c;
    };
    const statusCell = cell('c-status');
    const status = el('span');
    const stale = el('span', 'stale-badge', 'stale');
    stale.title = 'running, but no heartbeat for longer than the stale threshold';
    statusCell.append(status, stale);
    const nameCell = cell('c-name');
    const name = el('span', 'name');
    const id = el('span', 'vm-id');
    nameCell.append(name, id);
    const roleCell = cell('c-role');
    const role = el('span');
    roleCell.append(role);
    const address = cell('c-address');
    const services = cell('c-services');
    const lastSeen = cell('c-seen');
    const registered = cell('c-registered');
    element.append(statusCell, nameCell, roleCell, address, services, lastSeen, registered);
    this.spacer.append(element);
    return { element, cells: { status, stale, name, id, role, address, services, lastSeen, registered } };
  }
}
