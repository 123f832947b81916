import { choiceOption, integerOption, stringOption, type Command } from '../command.js';
import { ROLES } from '../../domain/schemas.js';
import { eventLine } from '../output.js';

export const watch: Command = {
  name: 'watch',
  summary: 'Print registry changes as they happen, until interrupted.',
  details:
    'Reconnects by itself and resumes after the last change it printed. If the registry no longer\n' +
    'holds that far back, it prints the current VMs ("resync") and carries on. With --json, one\n' +
    'JSON object per line.',
  options: {
    since: { type: 'string', value: 'REVISION', help: 'start after this revision (default: from now)' },
    role: { type: 'string', value: 'ROLE', help: 'only VMs of this role' },
    id: { type: 'string', value: 'ID', help: 'only this VM' },
  },
  connects: true,
  async run(context) {
    const role = choiceOption(context, 'role', ROLES);
    const id = stringOption(context, 'id');
    const since = integerOption(context, 'since');
    for await (const item of context.client().watch({ since, role, id, signal: context.signal })) {
      if (context.json) context.print(JSON.stringify(item));
      else if (item.type === 'resync') {
        context.note(`resync at revision ${item.revision}: some changes were missed; ${item.vms.length} VMs now`);
        for (const vm of item.vms) context.print(`${context.styles.dim(`#${item.revision}`)} current ${vm.id} ${vm.role} ${vm.status} ${vm.address}`);
      } else context.print(eventLine(item, context.styles));
    }
  },
};
