import { ApiError, type Api } from './api.js';
import type { Entry } from './fleet.js';
import { ago } from '../domain/duration.js';
import { describeHealth } from '../domain/service-health.js';
import { el, healthDot } from './format.js';

interface Action {
  label: string;
  verb: string;
  /** What it does, said before it is done: these change the registry entry, never the VM. */
  explain: string;
  /** Said after it is done. */
  done: string;
  applies(entry: Entry): boolean;
  run(api: Api, id: string): Promise<void>;
}

const ACTIONS: Action[] = [
  {
    label: 'Mark running',
    verb: 'resume',
    explain: 'marks its entry running again (and refreshes its last seen), so that discovery lists it. It does not start the VM.',
    done: 'is marked running',
    applies: (e) => e.vm.status !== 'running',
    run: (api, id) => api.setStatus(id, 'running'),
  },
  {
    label: 'Mark paused',
    verb: 'pause',
    explain: 'marks its entry paused, so that discovery leaves it out. It does not pause the VM.',
    done: 'is marked paused',
    applies: (e) => e.vm.status === 'running',
    run: (api, id) => api.setStatus(id, 'paused'),
  },
  {
    label: 'Mark stopped',
    verb: 'stop',
    explain: 'marks its entry stopped, so that discovery leaves it out. It does not stop the VM.',
    done: 'is marked stopped',
    applies: (e) => e.vm.status !== 'stopped',
    run: (api, id) => api.setStatus(id, 'stopped'),
  },
  {
    label: 'Deregister',
    verb: 'deregister',
    explain: 'removes its entry from the registry. The VM keeps running; it is back if it registers again.',
    done: 'is deregistered',
    applies: () => true,
    run: (api, id) => api.deregister(id),
  },
];

/**
 * The side panel for one VM: every field, services, metadata, and (for a token that may
 * write) the actions, each confirmed in a modal dialog first.
 */
/** Which VMs the token may change: all (admin, or an open registry), its own (write), none (read). */
export type Access = 'all' | 'own' | 'none';

export class DetailsPanel {
  private shown: Entry | undefined;
  /** Whether the token may change a VM, by id, as the server answered; asked once per VM. */
  private readonly mayChange = new Map<string, Promise<boolean>>();
  private id: string | undefined;
  /** What the last action changed, kept across the redraw its own event causes. */
  private outcome: { id: string; text: string; failed: boolean } | undefined;

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
  show(id: string | undefined, entry: Entry | undefined, access: Access, clockOffsetMs: number): void {
    if (id === this.id && entry === this.shown) return;
    this.id = id;
    this.shown = entry;
    this.panel.hidden = id === undefined;
    if (id === undefined) return;
    this.panel.replaceChildren(this.header(entry?.vm.name ?? id));
    if (this.outcome?.id !== id) this.outcome = undefined;
    if (!entry) {
      // Registered again later, it may belong to another token.
      this.mayChange.delete(id);
      this.panel.append(el('p', 'gone', `${id} is no longer registered.`));
      if (this.outcome) this.panel.append(el('p', 'action-done', this.outcome.text));
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
    field('status', stale ? `${vm.status}, but stale: no heartbeat for longer than the threshold` : vm.status);
    field('address', vm.address);
    field('registered by', vm.registeredBy);
    field('registered', ago(vm.registeredAt, now), vm.registeredAt);
    field('last seen', ago(vm.lastSeen, now), vm.lastSeen);
    this.panel.append(fields, el('h3', '', 'Services'));
    const services = vm.services ?? [];
    if (services.length === 0) this.panel.append(el('p', 'muted', 'none'));
    else {
      const list = el('ul', 'services');
      for (const s of services) {
        const item = el('li', '', `${s.name} — port ${s.port}${s.healthPath ? `, health ${s.healthPath}` : ''}`);
        if (s.health) item.append(el('br'), healthDot(s)!, describeHealth(s.health));
        list.append(item);
      }
      this.panel.append(list);
    }
    this.panel.append(el('h3', '', 'Metadata'), el('pre', 'metadata', JSON.stringify(vm.metadata ?? {}, null, 2)));
    if (access === 'all') this.panel.append(this.actions(entry));
    else if (access === 'own') void this.offerActionsIfOwned(entry);
  }

  /** Buttons the server would refuse are not offered: it says whether a write token owns the VM. */
  private async offerActionsIfOwned(entry: Entry): Promise<void> {
    const id = entry.vm.id;
    let answer = this.mayChange.get(id);
    if (!answer) {
      // A failed question is asked again next time, not remembered as a refusal.
      answer = this.api.mayChange(id).catch(() => (this.mayChange.delete(id), false));
      this.mayChange.set(id, answer);
    }
    const owned = await answer;
    if (this.shown !== entry) return;
    this.panel.append(owned ? this.actions(entry) : el('p', 'not-owned muted', 'Your token may change only the VMs it registered.'));
  }

  private header(title: string): HTMLElement {
    const header = el('header', 'panel-header');
    const close = el('button', 'close', '×');
    close.type = 'button';
    close.title = 'Close (Esc)';
    close.setAttribute('aria-label', 'Close');
    close.addEventListener('click', () => this.onClose());
    header.append(el('h2', '', title), close);
    return header;
  }

  private actions(entry: Entry): HTMLElement {
    const box = el('div', 'actions');
    const message = el('p', this.outcome?.failed ? 'action-message' : 'action-done', this.outcome?.text ?? '');
    message.setAttribute('role', 'status');
    for (const action of ACTIONS.filter((a) => a.applies(entry))) {
      const button = el('button', action.verb === 'deregister' ? 'danger' : '', action.label);
      button.type = 'button';
      button.dataset.action = action.verb;
      button.title = `This ${action.explain}`;
      button.addEventListener('click', async () => {
        const { id, name } = entry.vm;
        if (!(await this.confirm(`${action.label}: ${name} (${id})? This ${action.explain}`, action.label))) return;
        try {
          await action.run(this.api, id);
          this.outcome = { id, text: `${name} (${id}) ${action.done}.`, failed: false };
        } catch (error) {
          this.outcome = { id, text: error instanceof ApiError ? `${action.label} failed: ${error.message}` : String(error), failed: true };
        }
        message.className = this.outcome.failed ? 'action-message' : 'action-done';
        message.textContent = this.outcome.text;
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
