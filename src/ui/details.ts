import { ApiError, type Api } from './api.js';
import type { Entry } from './fleet.js';
import { ago } from '../domain/duration.js';
import { el } from './format.js';

interface Action {
  label: string;
  verb: string;
  applies(entry: Entry): boolean;
  run(api: Api, id: string): Promise<void>;
}

const ACTIONS: Action[] = [
  { label: 'Pause', verb: 'pause', applies: (e) => e.vm.status !== 'paused', run: (api, id) => api.setStatus(id, 'paused') },
  { label: 'Stop', verb: 'stop', applies: (e) => e.vm.status !== 'stopped', run: (api, id) => api.setStatus(id, 'stopped') },
  { label: 'Deregister', verb: 'deregister', applies: () => true, run: (api, id) => api.deregister(id) },
];

/**
 * The side panel for one VM: every field, services, metadata, and (for a token that may
 * write) the actions, each confirmed in a modal dialog first.
 */
export class DetailsPanel {
  private shown: Entry | undefined;
  private id: string | undefined;

  constructor(
    private readonly panel: HTMLElement,
    private readonly dialog: HTMLDialogElement,
    private readonly api: Api,
    private readonly onClose: () => void,
  ) {
    dialog.querySelector('.confirm-cancel')!.addEventListener('click', () => dialog.close('cancel'));
    dialog.querySelector('.confirm-ok')!.addEventListener('click', () => dialog.close('ok'));
  }

  /** Redraws only when the VM shown changed: an unrelated event must not wipe a message. */
  show(id: string | undefined, entry: Entry | undefined, canWrite: boolean, clockOffsetMs: number): void {
    if (id === this.id && entry === this.shown) return;
    this.id = id;
    this.shown = entry;
    this.panel.hidden = id === undefined;
    if (id === undefined) return;
    this.panel.replaceChildren(this.header(entry?.vm.name ?? id));
    if (!entry) {
      this.panel.append(el('p', 'gone', `${id} is no longer registered.`));
      return;
    }
    const { vm, stale } = entry;
    const now = Date.now() + clockOffsetMs;
    const fields = el('dl', 'fields');
    const field = (name: string, value: string, title = '') => {
      const dd = el('dd', '', value);
      if (title) dd.title = title;
      fields.append(el('dt', '', name), dd);
    };
    field('id', vm.id);
    field('role', vm.role);
    field('status', stale ? `${vm.status} (stale)` : vm.status);
    field('address', vm.address);
    field('registered by', vm.registeredBy);
    field('registered', ago(vm.registeredAt, now), vm.registeredAt);
    field('last seen', ago(vm.lastSeen, now), vm.lastSeen);
    this.panel.append(fields, el('h3', '', 'Services'));
    const services = vm.services ?? [];
    if (services.length === 0) this.panel.append(el('p', 'muted', 'none'));
    else {
      const list = el('ul', 'services');
      for (const s of services) list.append(el('li', '', `${s.name} — port ${s.port}${s.healthPath ? `, health ${s.healthPath}` : ''}`));
      this.panel.append(list);
    }
    this.panel.append(el('h3', '', 'Metadata'), el('pre', 'metadata', JSON.stringify(vm.metadata ?? {}, null, 2)));
    if (canWrite) this.panel.append(this.actions(entry));
  }

  private header(title: string): HTMLElement {
    const header = el('header', 'panel-header');
    const close = el('button', 'close', '×');
    close.type = 'button';
    close.title = 'Close';
    close.addEventListener('click', () => this.onClose());
    header.append(el('h2', '', title), close);
    return header;
  }

  private actions(entry: Entry): HTMLElement {
    const box = el('div', 'actions');
    const message = el('p', 'action-message');
    for (const action of ACTIONS.filter((a) => a.applies(entry))) {
      const button = el('button', action.verb === 'deregister' ? 'danger' : '', action.label);
      button.type = 'button';
      button.dataset.action = action.verb;
      button.addEventListener('click', async () => {
        const { id, name } = entry.vm;
        if (!(await this.confirm(`${action.label} ${name} (${id})?`, action.label))) return;
        message.textContent = '';
        try {
          await action.run(this.api, id);
        } catch (error) {
          message.textContent = error instanceof ApiError ? `${action.label} failed: ${error.message}` : String(error);
        }
      });
      box.append(button);
    }
    box.append(message);
    return box;
  }

  private confirm(question: string, verb: string): Promise<boolean> {
    this.dialog.querySelector('.confirm-text')!.textContent = question;
    this.dialog.querySelector('.confirm-ok')!.textContent = verb;
    this.dialog.returnValue = '';
    this.dialog.showModal();
    return new Promise((resolve) => this.dialog.addEventListener('close', () => resolve(this.dialog.returnValue === 'ok'), { once: true }));
  }
}
