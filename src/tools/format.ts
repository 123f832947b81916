import type { Vm } from '../client/index.js';
import { ago } from '../domain/duration.js';
import { describeHealth } from '../domain/service-health.js';

/** Services as the CLI's `--service` flag takes them, `[protocol://]name:port[/path]`, comma-separated; each with its health in brackets while checks are on. */
export const servicesText = (vm: Vm) =>
  (vm.services ?? [])
    .map((s) => `${s.protocol ? `${s.protocol}://` : ''}${s.name}:${s.port}${s.healthPath ?? ''}${s.health ? `(${s.health.status})` : ''}`)
    .join(',');

/** Each critical service, with since when and what its check saw: "pi-rpc critical since …: HTTP 500". */
const criticalText = (vm: Vm) =>
  (vm.services ?? [])
    .filter((s) => s.health?.status === 'critical')
    .map((s) => `${s.name} ${describeHealth(s.health!)}`)
    .join('; ');

/** One VM on one line, in the words an agent needs to use it. */
export function vmLine(vm: Vm, now = Date.now()): string {
  const services = servicesText(vm);
  const critical = criticalText(vm);
  return (
    // "stale" tells the agent not to count on it: running, but silent past the threshold.
    `- ${vm.name} (id ${vm.id}, ${vm.role}, ${vm.status}${vm.stale ? ', stale' : ''}) at ${vm.address}` +
    `${services ? `, services ${services}` : ''}, last seen ${ago(vm.lastSeen, now)}${critical ? `; ${critical}` : ''}`
  );
}

export function vmLines(vms: Vm[]): string {
  return vms.map((vm) => vmLine(vm)).join('\n');
}

/** Every field, for registry_get. */
export function vmText(vm: Vm): string {
  return [
    vmLine(vm).slice(2),
    `registered by ${vm.registeredBy} at ${vm.registeredAt}; lastSeen ${vm.lastSeen}`,
    ...(vm.metadata ? [`metadata: ${JSON.stringify(vm.metadata)}`] : []),
  ].join('\n');
}
