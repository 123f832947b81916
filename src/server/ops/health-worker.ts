/**
 * The health checker's thread. It holds the targets the server's thread tells it of, probes
 * each once an interval at its own fixed offset (so a restart or a new replica spreads them,
 * never bunches them), at most `concurrency` at a time, counts failures, and reports back,
 * batched, only the changes of status (which the server's thread stores) and metric tallies:
 * a fleet whose checks keep passing costs the server's event loop a message now and then.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { HealthStatus } from '../../domain/schemas/service-health.js';
import { hashOf } from '../../domain/service-health.js';
import { isoTimestamp } from '../../domain/vm-json.js';
import { HealthHostRule } from './health-hosts.js';
import { targetKey, type CheckTally, type FromWorker, type HealthChange, type ShardShare, type ToWorker, type VmTargets, type WorkerSettings } from './health-messages.js';
import { Prober, type Verdict } from './health-probe.js';

/** How often what happened is reported: changes of status wait at most this long to be stored. */
const REPORT_MS = 100;

interface Target {
  key: string;
  vmId: string;
  /** hashOf(vmId), for the share. */
  hash: number;
  address: string;
  service: { name: string; port: number; healthPath: string };
  /** What the store holds; undefined when a write of ours may not have been stored. */
  known: HealthStatus | undefined;
  /** ms into the round at which it is due. */
  offset: number;
  failures: number;
}

const emptyTally = (): CheckTally => ({ passed: 0, failed: { status: 0, timeout: 0, connection: 0, refused: 0 }, seconds: [], overdue: 0 });

class Checker {
  private readonly prober: Prober;
  private readonly targets = new Map<string, Target>();
  private readonly byVm = new Map<string, Target[]>();
  private share: ShardShare | undefined;
  private shards: Set<number> | undefined;
  private round: Target[] = [];
  /** Due in the last round, started in this one ahead of its own. */
  private carried: Target[] = [];
  private next = 0;
  private roundStart = 0;
  private inFlight = 0;
  private started = false;
  private dispatchTimer: NodeJS.Timeout | undefined;
  private changes: HealthChange[] = [];
  private tally = emptyTally();
  private statuses: Record<HealthStatus, number> | undefined;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: WorkerSettings,
    private readonly post: (report: FromWorker) => void,
  ) {
    const hosts = new HealthHostRule(settings.hosts.entries, settings.hosts.ownAddresses);
    // Connections stay open between checks of the same target: a keep-alive longer than the interval.
    this.prober = new Prober(settings.scheme, settings.timeoutMs, settings.intervalMs + settings.timeoutMs, hosts);
  }

  receive(message: ToWorker): void {
    if (message.type === 'share') {
      this.share = message.share;
      this.shards = message.share && new Set(message.share.shards);
    } else if (message.type === 'unrecorded') {
      const target = this.targets.get(message.key);
      if (target) target.known = undefined;
    } else {
      if (message.replace) this.replaceAll(message.vms);
      else for (const vm of message.vms) this.setVm(vm);
      // The first round waits for the first listing: begun empty, it would check nothing for an interval.
      if (!this.started) {
        this.started = true;
        this.beginRound();
      }
    }
  }

  private replaceAll(vms: readonly VmTargets[]): void {
    const listed = new Set(vms.map((vm) => vm.id));
    for (const id of [...this.byVm.keys()]) if (!listed.has(id)) this.setVm({ id, address: '', services: [] });
    for (const vm of vms) this.setVm(vm);
  }

  /** A target that stays the same keeps its object, its place in the round and its count of failures. */
  private setVm({ id, address, services }: VmTargets): void {
    const before = this.byVm.get(id) ?? [];
    const now: Target[] = [];
    for (const { known, ...service } of services) {
      const key = targetKey(id, address, service);
      let target = this.targets.get(key);
      if (target) target.known = known;
      else {
        target = { key, vmId: id, hash: hashOf(id), address, service, known, offset: hashOf(key) % this.settings.intervalMs, failures: 0 };
        this.targets.set(key, target);
      }
      now.push(target);
    }
    for (const old of before) if (!now.includes(old)) this.targets.delete(old.key);
    if (now.length > 0) this.byVm.set(id, now);
    else this.byVm.delete(id);
  }

  private owns(target: Target): boolean {
    return this.share === undefined || this.shards!.has(target.hash % this.share.count);
  }

  private beginRound(): void {
    const start = performance.now();
    // A check due at the very end of the last round whose timer fired a little late starts now,
    // late by a few ms; only what is later than the timeout is overdue, and skipped.
    const lastStart = this.roundStart;
    for (const target of this.round.slice(this.next)) {
      if (start - (lastStart + target.offset) <= this.settings.timeoutMs) this.carried.push(target);
      else this.tally.overdue++;
    }
    const counts: Record<HealthStatus, number> = { passing: 0, critical: 0, unknown: 0 };
    const round: Target[] = [];
    for (const target of this.targets.values()) {
      if (!this.owns(target)) continue;
      counts[target.known ?? 'unknown']++;
      round.push(target);
    }
    this.statuses = counts;
    this.round = round.sort((a, b) => a.offset - b.offset);
    this.next = 0;
    this.roundStart = start;
    this.schedule();
    setTimeout(() => this.beginRound(), Math.max(0, start + this.settings.intervalMs - performance.now()));
    this.dispatch();
  }

  /** Starts every check that is due, as far as the concurrency allows, then sleeps until the next is due. */
  private dispatch(): void {
    const round = this.round;
    const elapsed = performance.now() - this.roundStart;
    if (this.carried.length > 0) {
      for (const target of this.carried.splice(0, this.settings.concurrency - this.inFlight)) this.start(target, round);
    }
    while (this.next < round.length && this.inFlight < this.settings.concurrency && round[this.next].offset <= elapsed) {
      const target = round[this.next++];
      if (elapsed - target.offset > this.settings.timeoutMs) this.tally.overdue++;
      this.start(target, round);
    }
    if (this.next < round.length && this.inFlight < this.settings.concurrency) {
      clearTimeout(this.dispatchTimer);
      this.dispatchTimer = setTimeout(() => this.dispatch(), Math.max(1, round[this.next].offset - elapsed));
    }
  }

  private start(target: Target, round: Target[]): void {
    // Gone, or moved to another replica, since the round began.
    if (this.targets.get(target.key) !== target || !this.owns(target)) return;
    this.inFlight++;
    void this.check(target).finally(() => {
      this.inFlight--;
      if (round === this.round) this.dispatch();
    });
  }

  private async check(target: Target): Promise<void> {
    const began = performance.now();
    const at = Date.now();
    const verdict = await this.prober.probe(target.address, target.service.port, target.service.healthPath);
    this.count(verdict, (performance.now() - began) / 1000);
    let status: HealthStatus | undefined;
    if (verdict.pass) {
      target.failures = 0;
      status = 'passing';
    } else if (++target.failures >= this.settings.failures) {
      status = 'critical';
    }
    if (status === undefined || status === target.known || this.targets.get(target.key) !== target) return;
    // Taken as stored at once: the next checks must not ask again while the write is on its way.
    target.known = status;
    const { vmId, key, address, service } = target;
    this.changes.push({ vmId, key, address, service, health: { status, checkedAt: isoTimestamp(at), output: verdict.output } });
    this.schedule();
  }

  private count(verdict: Verdict, seconds: number): void {
    if (verdict.failure === undefined) this.tally.passed++;
    else this.tally.failed[verdict.failure]++;
    this.tally.seconds.push(seconds);
    this.schedule();
  }

  private schedule(): void {
    this.reportTimer ??= setTimeout(() => this.report(), REPORT_MS);
  }

  private report(): void {
    this.reportTimer = undefined;
    const report: FromWorker = { changes: this.changes, tally: this.tally, ...(this.statuses && { statuses: this.statuses }) };
    this.changes = [];
    this.tally = emptyTally();
    this.statuses = undefined;
    this.post(report);
  }
}

if (parentPort) {
  const port = parentPort;
  const checker = new Checker(workerData as WorkerSettings, (report) => port.postMessage(report));
  port.on('message', (message: ToWorker) => checker.receive(message));
}
