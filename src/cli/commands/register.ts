import { argument, type Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';
import { REGISTRATION_ARGS, REGISTRATION_FLAGS, registrationFrom } from '../vm-flags.js';

export const register: Command = {
  name: 'register',
  summary: 'Register a new VM (fails if the id is taken: put replaces).',
  args: REGISTRATION_ARGS,
  positionals: { min: 1, max: 1 },
  options: REGISTRATION_FLAGS,
  connects: true,
  async run(context) {
    const vm = await context.client().register(registrationFrom(context), { signal: context.signal });
    context.print(context.json ? jsonText(vm) : vmDetail(vm, context.styles));
  },
  explain(error, context) {
    if (error.statusCode !== 409) return undefined;
    const id = argument(context);
    return `VM "${id}" is already registered; to replace it, run vm-registry put ${id} with the same flags (or vm-registry update ${id} to change some fields)`;
  },
};
