import type { Vm } from '../client/index.js';
import { ago } from '../domain/duration.js';
import { servicesText } from '../cli/output.js';

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
