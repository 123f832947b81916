import type { Vm } from '../client/index.js';
import { ago } from '../domain/duration.js';

/** Services as the CLI's `--service` flag takes them, `[protocol://]name:port[/path]`, comma-separated; each with its health in brackets while checks are on. */
export const servicesText = (vm: Vm) =>
  (vm.services ?? [])
    .map((s) => `${s.protocol ? `${s.protocol}://` : ''}${s.name}:${s.port}${s.healthPath ?? ''}${s.health ? `(${s.health.status})` : ''}`)
    .join(',');

/** One VM on one line, in the words an agent needs to use it. */
export function vmLine(vm: Vm, now = Date.now()): string {
  const services = servicesText(vm);
  return (
    // "stale" tells the agent not to count on it: running, but silent past the threshold.
    `- ${vm.name} (id ${vm.id}, ${vm.role}, ${vm.status}${vm.stale ? ', stale' : ''}) at ${vm.address}` +
    `${services ? `, services ${services}` : ''}, last seen ${ago(vm.lastSeen, now)}`
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
