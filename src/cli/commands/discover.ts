import { argument, choice, choiceOption, EXIT, stringOption, WIDE_OPTION, type Command } from '../command.js';
import { fieldText, jsonText, vmDetail, vmTable } from '../output.js';
import { ROLES } from '../../domain/schemas/vm.js';
import { HEALTH_STATUSES } from '../../domain/schemas/service-health.js';
import type { VmList } from '../../client/index.js';

const DISCOVER_HEALTH = ['any', ...HEALTH_STATUSES] as const;

export const discover: Command = {
  name: 'discover',
  summary: 'Find running, non-stale VMs of a role, newest registration first.',
  args: 'ROLE',
  details:
    'For scripts: --first --field address prints just the address of the newest live VM, and\n' +
    'exits 1 when there is none. --field alone prints that field of every VM, one per line.\n' +
    'Fields may be dotted paths, such as services.0.port or metadata.task. VMs without the field\n' +
    'are skipped (no line, not an empty one), so --first --field gives the newest VM that has it.\n' +
    'With --watch it holds a blocking query and prints the answer again whenever it changes (a VM\n' +
    'of the role arriving, leaving or changing); changes to other roles print nothing.',
  positionals: { min: 1, max: 1 },
  options: {
    first: { type: 'boolean', help: 'only the newest VM; exit 1 if there is none' },
    field: { type: 'string', value: 'FIELD', help: 'print only this field, of the VMs that have it' },
    health: { type: 'string', value: 'STATE', help: 'any: keep VMs with a critical service (left out while health checks are on)' },
    service: { type: 'string', value: 'NAME', help: 'only VMs offering this service' },
    watch: { type: 'boolean', help: 'print the answer again each time it changes, until interrupted' },
    ...WIDE_OPTION,
  },
  connects: true,
  async run(context) {
    const role = choice(argument(context), ROLES, 'ROLE');
    const query = { signal: context.signal, health: choiceOption(context, 'health', DISCOVER_HEALTH), service: stringOption(context, 'service') };
    const field = stringOption(context, 'field');
    /** Prints one answer; false when --first found nothing to print. */
    const show = ({ vms, ...listing }: VmList): boolean => {
      if (context.values.first && vms.length === 0) {
        context.note(`vm-registry discover: no running, non-stale VM has role ${role}`);
        return false;
      }
      if (field !== undefined) {
        const values = vms.map((vm) => fieldText(vm, field)).filter((value) => value !== undefined);
        const chosen = context.values.first ? values.slice(0, 1) : values;
        if (context.values.first && chosen.length === 0) {
          context.note(`vm-registry discover: no running, non-stale VM of role ${role} has ${field}`);
          return false;
        }
        if (chosen.length > 0) context.print(chosen.join('\n'));
      } else if (context.json) {
        const value = context.values.first ? vms[0] : { vms, ...listing };
        // Watching: one JSON text per line, as `watch --json` prints, so that a reader can split them.
        context.print(context.values.watch ? JSON.stringify(value) : jsonText(value));
      }
      else if (context.values.first) context.print(vmDetail(vms[0], context.styles));
      else if (vms.length === 0) context.note(`No running, non-stale VMs with role ${role}.`);
      else context.print(vmTable(vms, context.styles, context.layout));
      return true;
    };
    if (context.values.watch) {
      for await (const answer of context.client().discoverChanges(role, query)) show(answer);
      return;
    }
    return show(await context.client().discover(role, query)) ? undefined : EXIT.failure;
  },
};
