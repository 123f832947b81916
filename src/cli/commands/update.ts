import { argument, explainIfMatch, integerOption, stringOption, UsageError, type Command } from '../command.js';
import { jsonText, vmDetail } from '../output.js';
import { metaPairs, UPDATE_FLAGS, updateFrom } from '../vm-flags.js';

export const update: Command = {
  name: 'update',
  summary: 'Change the name, status, address, services or metadata of a VM.',
  args: 'ID',
  details:
    '--service replaces the whole services list, and --metadata the whole object. --meta KEY=VALUE\n' +
    'changes single keys and keeps the others (read, then written with If-Match, so a concurrent\n' +
    'change is refused rather than lost). Setting --status running also counts as a heartbeat.\n' +
    'A role cannot be changed: discovery relies on it. Re-register the VM with vm-registry put ID\n' +
    '--role ROLE --name NAME --address ADDRESS, which replaces the whole registration.',
  positionals: { min: 1, max: 1 },
  options: {
    ...UPDATE_FLAGS,
    // Declared so that it is answered with the way to do it, rather than "unknown option".
    role: { type: 'string', value: 'ROLE', help: 'cannot be changed: re-register with vm-registry put (see above)' },
    'if-match': { type: 'string', value: 'REVISION', help: 'only update if the VM is still at this revision' },
  },
  connects: true,
  async run(context) {
    const id = argument(context);
    if (stringOption(context, 'role') !== undefined) {
      throw new UsageError(
        `the role of a VM cannot be changed; re-register it with vm-registry put ${id} --role ROLE --name NAME --address ADDRESS (replacing the whole registration)`,
      );
    }
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
  explain(error, context) {
    if (error.statusCode === 412 && stringOption(context, 'if-match') === undefined) {
      // The If-Match was our own, taken when --meta read the current metadata.
      return `VM "${argument(context)}" changed while --meta was being merged into its metadata, so nothing was written; run the command again`;
    }
    return explainIfMatch(error, context);
  },
};
