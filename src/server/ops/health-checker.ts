import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent } from 'undici';
import type { FastifyBaseLogger } from 'fastify';
import type { HealthStatus } from '../../domain/schemas/service-health.js';
import { hashOf, type HealthTarget } from '../../domain/service-health.js';
import { isoTimestamp } from '../../domain/vm-json.js';
import { listFilter, type RegistryStore } from '../../store/store.js';
import type { HealthHostRule } from './health-hosts.js';

export interface HealthCheckSettings {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures that make a service critical. */
  failures: number;
  concurrency: number;
  scheme: 'http' | 'https';
  hosts: HealthHostRule;
}

/** Why a check failed, as /metrics counts it. */
export type FailureReason = 'status' | 'timeout' | 'connection' | 'refused';

/** What the checker reports as it works (see RegistryMetrics.healthChecks). */
export interface HealthCheckObserver {
  checked(seconds: number, failure: FailureReason | undefined): void;
  overdue(): void;
  statuses(counts: Record<HealthStatus, number>): void;
}

/** Which VMs this replica checks; every VM when it is alone. */
export interface HealthShare {
  /** Called at the start of each round: takes or gives up shares. */
  refresh(): Promise<void>;
  owns(vmId: string): boolean;
  close(): Promise<void>;
}

export const WHOLE_REGISTRY: HealthShare = { refresh: async () => {}, owns: () => true, close: async () => {} };

/** Bytes of a body read before the connection is dropped: a health answer needs none. */
const BODY_CAP = 512;
const OUTPUT_LENGTH = 120;

interface Target extends HealthTarget {
  key: string;
  vmId: string;
  known: HealthStatus;
  /** ms into the round at which it is due. */
  offset: number;
}

class Refused extends Error {
  readonly code = 'EHEALTHREFUSED';
}

interface Verdict {
  pass: boolean;
  output: string;
  failure?: FailureReason;
}

/**
 * Probes every running VM's services that declare a healthPath, each once an interval at its
 * own fixed offset (so a restart or a new replica spreads them, never bunches them), at most
 * `concurrency` at a time, and stores only a change of status.
 */
export class HealthChecker {
  private readonly agent: Agent;
  private readonly failures = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private dispatchTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = 0;
  private round: Target[] = [];
  private next = 0;
  private roundStart = 0;

  constructor(
    private readonly store: RegistryStore,
    private readonly settings: HealthCheckSettings,
    private readonly share: HealthShare,
    private readonly observer?: HealthCheckObserver,
    private readonly log?: FastifyBaseLogger,
  ) {
    // An Agent without the redirect interceptor never follows a redirect: a 3xx is a failure.
    this.agent = new Agent({
      // Connections stay open between checks of the same target: a keep-alive longer than the interval.
      keepAliveTimeout: settings.intervalMs + settings.timeoutMs,
      keepAliveMaxTimeout: settings.intervalMs + settings.timeoutMs,
      connections: 4,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      connect: { timeout: settings.timeoutMs, lookup: this.lookup },
    });
  }

  start(): void {
    void this.beginRound();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.dispatchTimer);
    await this.share.close();
    await this.agent.destroy();
  }

  /** Resolves a name as connect would, and refuses it unless an address it resolves to is allowed. */
  private readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const allowed = addresses.filter((a) => this.settings.hosts.refusal(hostname, a.address) === undefined);
      if (allowed.length === 0) {
        const why = addresses.length > 0 ? this.settings.hosts.refusal(hostname, addresses[0].address)! : `${hostname} has no address`;
        return callback(new Refused(why), []);
      }
      if (options.all) callback(null, allowed);
      else callback(null, allowed[0].address, allowed[0].family);
    });
  };

  private async beginRound(): Promise<void> {
    if (this.stopped) return;
    const start = performance.now();
    // Whatever the last round could not start in its interval is late by a whole one.
    for (let i = this.next; i < this.round.length; i++) this.observer?.overdue();
    try {
      await this.share.refresh();
      this.round = await this.targets();
    } catch (error) {
      this.log?.warn({ err: error }, 'health checks: could not read the VMs to check; trying again next interval');
      this.round = [];
    }
    this.next = 0;
    this.roundStart = start;
    if (!this.stopped) this.timer = setTimeout(() => void this.beginRound(), Math.max(0, start + this.settings.intervalMs - performance.now()));
    this.dispatch();
  }

  private async targets(): Promise<Target[]> {
    const { vms } = await this.store.list(listFilter({ status: 'running' }));
    const counts: Record<HealthStatus, number> = { passing: 0, critical: 0, unknown: 0 };
    const targets: Target[] = [];
    for (const vm of vms) {
      if (!this.share.owns(vm.id)) continue;
      for (const service of vm.services ?? []) {
        if (service.healthPath === undefined) continue;
        const known = service.health?.status ?? 'unknown';
        counts[known]++;
        const key = `${vm.id}\n${service.name}\n${service.port}\n${service.healthPath}\n${vm.address}`;
        targets.push({
          key,
          vmId: vm.id,
          address: vm.address,
          service: { name: service.name, port: service.port, healthPath: service.healthPath },
          known,
          offset: hashOf(key) % this.settings.intervalMs,
        });
      }
    }
    this.observer?.statuses(counts);
    // Counts of failures for targets that are gone would otherwise pile up for ever.
    const keys = new Set(targets.map((t) => t.key));
    for (const key of this.failures.keys()) if (!keys.has(key)) this.failures.delete(key);
    return targets.sort((a, b) => a.offset - b.offset);
  }

  /** Starts every check that is due, as far as the concurrency allows, then sleeps until the next is due. */
  private dispatch(): void {
    if (this.stopped) return;
    const round = this.round;
    const elapsed = performance.now() - this.roundStart;
    while (this.next < round.length && this.inFlight < this.settings.concurrency && round[this.next].offset <= elapsed) {
      const target = round[this.next++];
      if (elapsed - target.offset > this.settings.timeoutMs) this.observer?.overdue();
      this.inFlight++;
      void this.check(target).finally(() => {
        this.inFlight--;
        if (round === this.round) this.dispatch();
      });
    }
    if (this.next < round.length && this.inFlight < this.settings.concurrency) {
      const wait = Math.max(1, round[this.next].offset - elapsed);
      clearTimeout(this.dispatchTimer);
      this.dispatchTimer = setTimeout(() => this.dispatch(), wait);
    }
  }

  private async check(target: Target): Promise<void> {
    // Its share may have moved to another replica since the round began.
    if (!this.share.owns(target.vmId)) return;
    const began = performance.now();
    const at = Date.now();
    const verdict = await this.probe(target);
    this.observer?.checked((performance.now() - began) / 1000, verdict.failure);
    let status: HealthStatus | undefined;
    if (verdict.pass) {
      this.failures.delete(target.key);
      status = 'passing';
    } else {
      const failed = (this.failures.get(target.key) ?? 0) + 1;
      this.failures.set(target.key, failed);
      if (failed >= this.settings.failures) status = 'critical';
    }
    if (status === undefined || status === target.known || this.stopped) return;
    try {
      await this.store.recordHealth(target.vmId, target, { status, checkedAt: isoTimestamp(at), output: verdict.output });
      target.known = status;
    } catch (error) {
      this.log?.warn({ err: error, vm: target.vmId }, 'health checks: could not store a change of status');
    }
  }

  /** One GET, bounded by the timeout from connect to the last byte read. */
  private async probe({ address, service }: Target): Promise<Verdict> {
    if (isIP(address)) {
      // A literal address skips the lookup, where names are judged: judge it here.
      const refusal = this.settings.hosts.refusal(address, address);
      if (refusal) return { pass: false, output: `refused: ${refusal}`, failure: 'refused' };
    }
    const host = isIP(address) === 6 ? `[${address}]` : address;
    const signal = AbortSignal.timeout(this.settings.timeoutMs);
    try {
      const response = await this.agent.request({
        origin: `${this.settings.scheme}://${host}:${service.port}`,
        path: service.healthPath,
        method: 'GET',
        // No registry credentials, no cookies: only who is asking.
        headers: { 'user-agent': 'vm-registry-health-check' },
        signal,
      });
      let read = 0;
      for await (const chunk of response.body) {
        read += (chunk as Buffer).length;
        // Ending the loop early destroys the body, and with it the connection.
        if (read > BODY_CAP) break;
      }
      const pass = response.statusCode >= 200 && response.statusCode < 300;
      return { pass, output: `HTTP ${response.statusCode}`, ...(!pass && { failure: 'status' as const }) };
    } catch (error) {
      return this.failure(error, signal);
    }
  }

  private failure(error: unknown, signal: AbortSignal): Verdict {
    const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const cause = err.cause instanceof Refused ? err.cause : err;
    if (cause instanceof Refused) return { pass: false, output: `refused: ${cause.message}`.slice(0, OUTPUT_LENGTH * 2), failure: 'refused' };
    if (signal.aborted || /timeout/i.test(err.code ?? '') || err.name === 'TimeoutError') {
      return { pass: false, output: `timeout after ${this.settings.timeoutMs} ms`, failure: 'timeout' };
    }
    const code = err.code ?? err.cause?.code;
    return { pass: false, output: (code ? `${code}: ${err.message}` : err.message).slice(0, OUTPUT_LENGTH), failure: 'connection' };
  }
}
