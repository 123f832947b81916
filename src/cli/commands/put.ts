import { integerOption, type Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';
import { REGISTRATION_ARGS, REGISTRATION_FLAGS, registrationFrom } from '../vm-flags.js';

export const put: Command = {
  name: 'put',
  summary: 'Register a VM, or replace its registration (idempotent; keeps registeredAt).',
  args: REGISTRATION_ARGS,
  positionals: { min: 1, max: 1 },
  options: {
    ...REGISTRATION_FLAGS,
    'if-match': { type: 'string', value: 'REVISION', help: 'only replace if the VM is still at this revision' },
  },
  connects: true,
  async run(context) {
    const ifMatch = integerOption(context, 'if-match');
    const { vm, created } = await context.client().put(registrationFrom(context), { ifMatch, signal: context.signal });
    if (context.json) return context.print(jsonText(vm));
    context.note(created ? `registered ${vm.id}` : `replaced ${vm.id}`);
    context.print(vmDetail(vm, context.styles));
  },
};
