import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import type { Vm } from '../../domain/schemas/vm.js';
import { listFilter, type RegistryStore } from '../../store/store.js';
import type { ChangeFeed, FeedChange, FeedEvent } from '../feed/change-feed.js';
import type { FromWorker, HealthCheckObserver, HealthCheckSettings, ShardShare, ToWorker, VmTargets, WorkerSettings } from './health-messages.js';

export type { FailureReason, HealthCheckObserver, HealthCheckSettings } from './health-messages.js';

/** Which VMs this replica checks; every VM when it is alone. */
export interface HealthShare {
  /** Called once an interval: takes or gives up shares. */
  refresh(): Promise<void>;
  /** The shards held now; undefined: every VM. */
  held(): ShardShare | undefined;
  close(): Promise<void>;
}

export const WHOLE_REGISTRY: HealthShare = { refresh: async () => {}, held: () => undefined, close: async () => {} };

/** A crashed checker thread is started again after this, doubling while it keeps crashing, up to one interval. */
const FIRST_RESTART_MS = 1000;

/** A VM's checked services, as the checker thread is told of them. */
function targetsOf(vm: Pick<Vm, 'id' | 'address' | 'services'>, checkable: boolean): VmTargets {
  const services: VmTargets['services'] = [];
  if (checkable) {
    for (const { name, port, healthPath, health } of vm.services ?? []) {
      if (healthPath !== undefined) services.push({ name, port, healthPath, known: health?.status ?? 'unknown' });
    }
  }
  return { id: vm.id, address: vm.address, services };
}

/**
 * Runs the health checks in a thread of their own (health-worker.ts), so that probing never
 * takes the event loop that answers the API. This side tells the thread of the targets as
 * they change, from the change feed (one listing at start, another only if the feed loses its
 * place or the thread is restarted), refreshes the replica's share once an interval, and
 * stores the changes of status the thread reports, through the store's own recordHealth, so
 * that revisions, events and ETags are as for any change.
 */
export class HealthChecker {
  private worker: Worker | undefined;
  private stopped = false;
  /** Changes the feed delivered while a listing was on its way; undefined when none is. */
  private buffered: FeedEvent[] | undefined;
  /** Which listing is the latest: an older one still on its way must not overwrite what a newer one sent. */
  private listing = 0;
  private outbox: VmTargets[] = [];
  private flushing: NodeJS.Immediate | undefined;
  /** VMs the thread holds targets for, so that a change to a VM without any sends nothing. */
  private readonly withTargets = new Set<string>();
  private readonly writes = new Set<Promise<void>>();
  private unfollow = () => {};
  private shareTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private listTimer: NodeJS.Timeout | undefined;
  private restartDelay = FIRST_RESTART_MS;
  private launchedAt = 0;

  constructor(
    private readonly store: RegistryStore,
    private readonly feed: ChangeFeed,
    private readonly settings: HealthCheckSettings,
    private readonly share: HealthShare,
    private readonly observer?: HealthCheckObserver,
    private readonly log?: FastifyBaseLogger,
  ) {}

  start(): void {
    this.unfollow = this.feed.observe((change) => this.follow(change));
    this.launch();
    void this.refreshShare();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unfollow();
    clearTimeout(this.shareTimer);
    clearTimeout(this.restartTimer);
    clearTimeout(this.listTimer);
    clearImmediate(this.flushing);
    await this.worker?.terminate();
    await Promise.all(this.writes);
    await this.share.close();
  }

  private launch(): void {
    const { hosts, ...rest } = this.settings;
    const workerData: WorkerSettings = { ...rest, hosts: hosts.spec };
    const worker = new Worker(new URL('./health-worker.js', import.meta.url), { workerData, name: 'vm-registry health checks' });
    this.worker = worker;
    this.launchedAt = performance.now();
    worker.on('message', (report: FromWorker) => this.receive(report));
    worker.on('error', (error) => this.log?.error({ err: error }, 'health checks: the checker thread failed'));
    worker.on('exit', (code) => this.exited(worker, code));
    this.send({ type: 'share', share: this.share.held() });
    void this.list();
  }

  /**
   * A checker thread that dies is started again rather than taking the server down with it:
   * discovery and heartbeats matter more than checks, and the verdicts stored stay as they
   * were meanwhile. Its counts of failures in a row are lost; a critical service stays so
   * until a pass.
   */
  private exited(worker: Worker, code: number): void {
    if (this.stopped || worker !== this.worker) return;
    this.worker = undefined;
    // One that ran a whole interval before dying is not crashing in a loop: start again soon.
    if (performance.now() - this.launchedAt > this.settings.intervalMs) this.restartDelay = FIRST_RESTART_MS;
    this.log?.error({ code, restartInMs: this.restartDelay }, 'health checks: the checker thread stopped; starting another');
    this.observer?.restarted();
    this.restartTimer = setTimeout(() => this.launch(), this.restartDelay);
    this.restartDelay = Math.min(this.restartDelay * 2, this.settings.intervalMs);
  }

  /** Every running VM, once; the feed's changes after the listing's revision follow it. */
  private async list(): Promise<void> {
    const listing = ++this.listing;
    clearTimeout(this.listTimer);
    this.buffered = [];
    this.outbox = [];
    try {
      const { vms, revision } = await this.store.list(listFilter({ status: 'running' }));
      if (this.stopped || listing !== this.listing) return;
      this.withTargets.clear();
      const all = vms.map((vm) => this.note(targetsOf(vm, true)));
      this.send({ type: 'targets', replace: true, vms: all.filter((vm) => vm.services.length > 0) });
      const later = this.buffered.filter((change) => change.revision > revision);
      this.buffered = undefined;
      for (const change of later) this.follow(change);
    } catch (error) {
      if (this.stopped || listing !== this.listing) return;
      this.log?.warn({ err: error }, 'health checks: could not list the VMs to check; trying again in an interval');
      this.listTimer = setTimeout(() => void this.list(), this.settings.intervalMs);
    }
  }

  private follow(change: FeedChange): void {
    if (change.type === 'reset') {
      // The feed lost its place: what it missed is unknown, so list again.
      void this.list();
      return;
    }
    if (this.buffered) {
      this.buffered.push(change);
      return;
    }
    const checkable = change.after !== undefined && change.after.status === 'running' && !change.after.stale;
    const vm = targetsOf(change.vm, checkable);
    if (vm.services.length === 0 && !this.withTargets.has(vm.id)) return;
    this.outbox.push(this.note(vm));
    // Changes that arrive together (a burst of registrations) go to the thread in one message.
    this.flushing ??= setImmediate(() => {
      this.flushing = undefined;
      const vms = this.outbox;
      this.outbox = [];
      this.send({ type: 'targets', replace: false, vms });
    });
  }

  private note(vm: VmTargets): VmTargets {
    if (vm.services.length > 0) this.withTargets.add(vm.id);
    else this.withTargets.delete(vm.id);
    return vm;
  }

  private send(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  private async refreshShare(): Promise<void> {
    const started = performance.now();
    await this.share.refresh();
    if (this.stopped) return;
    this.send({ type: 'share', share: this.share.held() });
    this.shareTimer = setTimeout(() => void this.refreshShare(), Math.max(0, started + this.settings.intervalMs - performance.now()));
  }

  private receive({ changes, tally, statuses }: FromWorker): void {
    this.observer?.tally(tally);
    if (statuses) this.observer?.statuses(statuses);
    for (const change of changes) {
      if (this.stopped) return;
      const write = this.store
        .recordHealth(change.vmId, change, change.health)
        .then(
          () => undefined,
          (error: unknown) => {
            this.log?.warn({ err: error, vm: change.vmId }, 'health checks: could not store a change of status');
            this.send({ type: 'unrecorded', key: change.key });
          },
        )
        .finally(() => this.writes.delete(write));
      this.writes.add(write);
    }
  }
}
