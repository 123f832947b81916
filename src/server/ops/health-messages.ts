import type { HealthStatus, ServiceHealth } from '../../domain/schemas/service-health.js';
import type { HealthTarget } from '../../domain/service-health.js';
import type { HealthHostRule, HealthHostSpec } from './health-hosts.js';

/**
 * What the server's thread and the checker's thread say to each other. The checker thread
 * owns the probing; the server's thread owns the store. Only what the other side must act on
 * crosses: targets as they change one way, status changes and metric tallies the other.
 */

export interface HealthCheckSettings {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures that make a service critical. */
  failures: number;
  concurrency: number;
  scheme: 'http' | 'https';
  hosts: HealthHostRule;
}

/** The settings as the checker thread receives them: plain data. */
export type WorkerSettings = Omit<HealthCheckSettings, 'hosts'> & { hosts: HealthHostSpec };

/** Why a check failed, as /metrics counts it. */
export const FAILURE_REASONS = ['status', 'timeout', 'connection', 'refused'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** One checked service of a VM, with the status the store holds for it. */
export interface ServiceTarget {
  name: string;
  port: number;
  healthPath: string;
  known: HealthStatus;
}

/** A VM's checked services now: none when it is gone, stopped, stale or declares none. */
export interface VmTargets {
  id: string;
  address: string;
  services: ServiceTarget[];
}

/** Which VMs this server checks: those whose hash of the id, modulo `count`, is one of `shards`. */
export interface ShardShare {
  count: number;
  shards: number[];
}

export type ToWorker =
  /** `replace`: these are every VM there is (a first listing, or one after the feed lost its place). */
  | { type: 'targets'; replace: boolean; vms: VmTargets[] }
  /** undefined: every VM. */
  | { type: 'share'; share: ShardShare | undefined }
  /** The server could not store this change of status: the checker must not take it as stored. */
  | { type: 'unrecorded'; key: string };

export interface HealthChange extends HealthTarget {
  vmId: string;
  key: string;
  health: ServiceHealth;
}

/** What checks did since the last report. */
export interface CheckTally {
  passed: number;
  failed: Record<FailureReason, number>;
  /** Each check's time to its verdict. */
  seconds: number[];
  overdue: number;
}

export interface FromWorker {
  changes: HealthChange[];
  tally: CheckTally;
  /** Set at the start of a round: the checked services of this server's share by status. */
  statuses?: Record<HealthStatus, number>;
}

/** What the checker reports as it works (see RegistryMetrics.healthChecks). */
export interface HealthCheckObserver {
  tally(tally: CheckTally): void;
  statuses(counts: Record<HealthStatus, number>): void;
  restarted(): void;
}

/** The key of one probe: the same VM, service, port, path and address is the same target. */
export const targetKey = (vmId: string, address: string, service: Omit<ServiceTarget, 'known'>): string =>
  `${vmId}\n${service.name}\n${service.port}\n${service.healthPath}\n${address}`;
