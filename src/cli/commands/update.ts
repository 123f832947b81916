import { argument, integerOption, UsageError, type Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';
import { metaPairs, UPDATE_FLAGS, updateFrom } from '../vm-flags.js';

export const update: Command = {
  name: 'update',
  summary: 'Change the name, status, address, services or metadata of a VM.',
  args: 'ID',
  details:
    '--service replaces the whole services list, and --metadata the whole object. --meta KEY=VALUE\n' +
    'changes single keys and keeps the others (read, then written with If-Match, so a concurrent\n' +
    'change is refused rather than lost). Setting --status running also counts as a heartbeat.',
  positionals: { min: 1, max: 1 },
  options: {
    ...UPDATE_FLAGS,
    'if-match': { type: 'string', value: 'REVISION', help: 'only update if the VM is still at this revision' },
  },
  connects: true,
  async run(context) {
    const id = argument(context);
    const client = context.client();
    const changes = updateFrom(context);
    let ifMatch = integerOption(context, 'if-match');
    const meta = metaPairs(context);
    if (meta) {
      if (changes.metadata) throw new UsageError('use either --metadata (replace) or --meta (merge), not both');
      const current = await client.getVersioned(id, { signal: context.signal });
      if (ifMatch !== undefined && ifMatch !== current.revision) {
        throw new UsageError(`VM "${id}" is at revision ${current.revision}, not ${ifMatch}`);
      }
      ifMatch = current.revision;
      changes.metadata = { ...current.vm.metadata, ...meta };
    }
    if (Object.keys(changes).length === 0) {
      throw new UsageError('nothing to change: pass --name, --status, --address, --service, --metadata or --meta');
    }
    const vm = await client.update(id, changes, { ifMatch, signal: context.signal });
    context.print(context.json ? jsonText(vm) : vmDetail(vm, context.styles));
  },
};
