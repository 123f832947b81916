import type { Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';
import { REGISTRATION_ARGS, REGISTRATION_FLAGS, registrationFrom } from '../vm-flags.js';

export const register: Command = {
  name: 'register',
  summary: 'Register a new VM (fails with 409 if the id is taken; see put).',
  args: REGISTRATION_ARGS,
  positionals: { min: 1, max: 1 },
  options: REGISTRATION_FLAGS,
  connects: true,
  async run(context) {
    const vm = await context.client().register(registrationFrom(context), { signal: context.signal });
    context.print(context.json ? jsonText(vm) : vmDetail(vm, context.styles));
  },
};
