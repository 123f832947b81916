import { argument, EXIT, stringOption, type Command } from '../command.js';
import { fieldText, jsonText, vmDetail, vmTable } from '../output.js';
import type { DiscoverQuery, Role } from '../../client/index.js';

export const discover: Command = {
  name: 'discover',
  summary: 'Find running, non-stale VMs of a role, newest registration first.',
  args: 'ROLE',
  details:
    'For scripts: --first --field address prints just the address of the newest live VM, and\n' +
    'exits 1 when there is none. --field alone prints that field of every VM, one per line.\n' +
    'Fields may be dotted paths, such as services.0.port or metadata.task.',
  positionals: { min: 1, max: 1 },
  options: {
    first: { type: 'boolean', help: 'only the newest VM; exit 1 if there is none' },
    field: { type: 'string', value: 'FIELD', help: 'print only this field' },
    health: { type: 'string', value: 'STATE', help: 'any: keep VMs with a critical service (left out while health checks are on)' },
    service: { type: 'string', value: 'NAME', help: 'only VMs offering this service' },
  },
  connects: true,
  async run(context) {
    const role = argument(context) as Role;
    const { vms, ...listing } = await context.client().discover(role, {
      signal: context.signal,
      health: stringOption(context, 'health') as DiscoverQuery['health'],
      service: stringOption(context, 'service'),
    });
    const field = stringOption(context, 'field');
    const chosen = context.values.first ? vms.slice(0, 1) : vms;
    if (context.values.first && chosen.length === 0) {
      context.note(`vm-registry discover: no running, non-stale VM has role ${role}`);
      return EXIT.failure;
    }
    if (field !== undefined) {
      const values = chosen.map((vm) => fieldText(vm, field));
      if (values.some((value) => value === undefined)) {
        context.note(`vm-registry discover: field "${field}" is not set on ${chosen.filter((_, i) => values[i] === undefined).map((vm) => vm.id).join(', ')}`);
        return EXIT.failure;
      }
      if (values.length > 0) context.print(values.join('\n'));
      return;
    }
    if (context.json) return context.print(jsonText(context.values.first ? chosen[0] : { vms, ...listing }));
    if (context.values.first) return context.print(vmDetail(chosen[0], context.styles));
    if (vms.length === 0) return context.note(`No running, non-stale VMs with role ${role}.`);
    context.print(vmTable(vms, context.styles));
  },
};
