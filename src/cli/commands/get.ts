import { argument, type Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';
import { staleIds } from '../stale.js';

export const get: Command = {
  name: 'get',
  summary: 'Show one VM.',
  args: 'ID',
  positionals: { min: 1, max: 1 },
  connects: true,
  async run(context) {
    const client = context.client();
    const { vm, revision } = await client.getVersioned(argument(context), { signal: context.signal });
    if (context.json) return context.print(jsonText(vm));
    const stale = vm.status === 'running' && (await staleIds(client, { role: vm.role, signal: context.signal })).has(vm.id);
    context.print(vmDetail(vm, stale, context.styles, { revision }));
  },
};
