import type { HealthStatus, ServiceHealth } from './schemas/service-health.js';

/** A service as the store keeps it: what the client declared, plus the checker's verdict. */
export interface CheckedService {
  name: string;
  port: number;
  protocol?: string;
  healthPath?: string;
  health?: ServiceHealth;
}

const UNKNOWN: ServiceHealth = { status: 'unknown' };

const sameTarget = (a: CheckedService, b: CheckedService) => a.name === b.name && a.port === b.port && a.healthPath === b.healthPath;

/**
 * The services a write stores. With checks on, a service with a healthPath keeps the verdict
 * it had when nothing it is probed by changed (same name, port, path, and `previous` given
 * only when the address is the same), and starts `unknown` otherwise. With checks off no
 * verdict is stored, so that answers stay as they were before health checks existed.
 */
export function withHealth(
  services: readonly CheckedService[] | undefined,
  previous: readonly CheckedService[] | undefined,
  checking: boolean,
): CheckedService[] | undefined {
  if (services === undefined) return undefined;
  return services.map(({ health: _ignored, ...service }) => {
    if (!checking || service.healthPath === undefined) return service;
    const kept = previous?.find((old) => sameTarget(old, service))?.health;
    return { ...service, health: kept ?? UNKNOWN };
  });
}

/** Which service a result is about: the target the checker probed. */
export interface HealthTarget {
  address: string;
  service: { name: string; port: number; healthPath: string };
}

/**
 * The services after a check's verdict, or undefined when nothing is to be written: the
 * status is the one already stored, or the VM no longer has that target (it moved or changed
 * its services while the check ran, and the result is about something gone).
 */
export function applyHealth(
  address: string,
  services: readonly CheckedService[] | undefined,
  target: HealthTarget,
  health: ServiceHealth,
): CheckedService[] | undefined {
  if (services === undefined || address !== target.address) return undefined;
  const at = services.findIndex((service) => sameTarget(service, target.service));
  if (at < 0 || services[at].health?.status === health.status) return undefined;
  return services.map((service, i) => (i === at ? { ...service, health } : service));
}

/**
 * A verdict in words, the same on the dashboard and in agent tools: "critical since
 * 2026-11-27T12:00:30.000Z: HTTP 500". Only changes of status are stored, so checkedAt is
 * when the service entered the status shown.
 */
export function describeHealth({ status, checkedAt, output }: ServiceHealth): string {
  if (checkedAt === undefined) return `${status}: not checked yet`;
  return `${status} since ${checkedAt}${output ? `: ${output}` : ''}`;
}

/** critical over unknown over passing. */
const RANK: Record<HealthStatus, number> = { passing: 0, unknown: 1, critical: 2 };

/** A service's state for filters: one without a healthPath is never checked, and never in doubt. */
const stateOf = (service: CheckedService): HealthStatus =>
  service.healthPath === undefined ? 'passing' : (service.health?.status ?? 'unknown');

export interface HealthFilter {
  /** Only VMs in one of these states; undefined: any. */
  health?: readonly HealthStatus[];
  /** Only VMs offering this service, and then only its state counts. */
  service?: string;
}

/**
 * The one rule both stores filter by. A VM's state is the worst of its services' (or of the
 * named service's): any critical makes it critical, else any unknown makes it unknown.
 */
export function matchesHealth(services: readonly CheckedService[] | undefined, filter: HealthFilter): boolean {
  if (filter.health === undefined && filter.service === undefined) return true;
  const counted = filter.service === undefined ? (services ?? []) : (services ?? []).filter((s) => s.name === filter.service);
  if (filter.service !== undefined && counted.length === 0) return false;
  if (filter.health === undefined) return true;
  let state: HealthStatus = 'passing';
  for (const service of counted) {
    const own = stateOf(service);
    if (RANK[own] > RANK[state]) state = own;
  }
  return filter.health.includes(state);
}

/** FNV-1a: a fixed number for a key, the same after every restart and on every replica (offsets, shards). */
export function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
