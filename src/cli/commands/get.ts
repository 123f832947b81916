import { argument, type Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';

export const get: Command = {
  name: 'get',
  summary: 'Show one VM.',
  args: 'ID',
  positionals: { min: 1, max: 1 },
  connects: true,
  async run(context) {
    const vm = await context.client().get(argument(context), { signal: context.signal });
    context.print(context.json ? jsonText(vm) : vmDetail(vm, context.styles));
  },
};
