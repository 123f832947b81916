import { choiceOption, stringOption, UsageError, WIDE_OPTION, type Command } from '../command.js';
import { ROLES, STATUSES } from '../../domain/schemas/vm.js';
import { HEALTH_STATUSES } from '../../domain/schemas/service-health.js';
import { jsonText, vmTable } from '../output.js';
import type { ListOptions } from '../../client/index.js';

export const ls: Command = {
  name: 'ls',
  summary: 'List registered VMs, newest registration first.',
  details:
    'Stale VMs (running, but no heartbeat within the stale window) are marked "(stale)". On a terminal\n' +
    'the table fits its width, cutting long ids, names, addresses and services with "…"; piped, nothing\n' +
    'is cut. --wide shows everything, with who registered each VM, when, and its metadata.',
  options: {
    role: { type: 'string', value: 'ROLE', help: 'only this role' },
    status: { type: 'string', value: 'STATUS', help: 'only this status (running leaves stale VMs out, as in the API)' },
    stale: { type: 'boolean', help: 'only stale VMs' },
    fresh: { type: 'boolean', help: 'leave stale VMs out' },
    health: { type: 'string', value: 'STATE', help: 'only VMs in this health state: passing, critical or unknown' },
    service: { type: 'string', value: 'NAME', help: 'only VMs offering this service (with --health, its state decides)' },
    ...WIDE_OPTION,
  },
  connects: true,
  async run(context) {
    if (context.values.stale && context.values.fresh) throw new UsageError('--stale and --fresh exclude each other');
    const role = choiceOption(context, 'role', ROLES);
    const status = choiceOption(context, 'status', STATUSES);
    const filter: ListOptions = {
      ...(role !== undefined && { role }),
      ...(status !== undefined && { status }),
      ...(context.values.stale === true && { stale: true }),
      ...(context.values.fresh === true && { stale: false }),
      health: choiceOption(context, 'health', HEALTH_STATUSES),
      service: stringOption(context, 'service'),
      signal: context.signal,
    };
    const listing = await context.client().list(filter);
    if (context.json) return context.print(jsonText(listing));
    if (listing.vms.length === 0) return context.note('No VMs match.');
    context.print(vmTable(listing.vms, context.styles, context.layout));
  },
};
