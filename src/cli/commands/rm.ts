import { explainIfMatch, integerOption, UsageError, type Command } from '../command.js';
import { jsonText } from '../output.js';

export const rm: Command = {
  name: 'rm',
  summary: 'Deregister one or more VMs.',
  args: 'ID [ID...]',
  positionals: { min: 1, max: Infinity },
  options: {
    'if-match': { type: 'string', value: 'REVISION', help: 'only deregister if the VM is still at this revision (one ID)' },
  },
  connects: true,
  async run(context) {
    const ifMatch = integerOption(context, 'if-match');
    if (ifMatch !== undefined && context.positionals.length > 1) throw new UsageError('--if-match takes exactly one ID');
    const client = context.client();
    // One at a time, stopping at the first failure, so the output says exactly what was removed.
    for (const id of context.positionals) {
      const deleted = await client.deregister(id, { ifMatch, signal: context.signal });
      context.print(context.json ? jsonText(deleted).trimEnd() : `deregistered ${deleted.id}`);
    }
  },
  explain: explainIfMatch,
};
