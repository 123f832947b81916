import { writeFileSync } from 'node:fs';
import { stringOption, type Command } from '../command.js';
import { jsonText } from '../output.js';

export const exportCommand: Command = {
  name: 'export',
  summary: 'Write every VM as {"vms": [...]}, the format of agent-services\' data/registry.json.',
  details: 'The output can be read back by vm-registry import, here or on another registry.',
  options: { out: { type: 'string', short: 'o', value: 'FILE', help: 'write to FILE instead of stdout' } },
  connects: true,
  async run(context) {
    const listing = await context.client().list({ signal: context.signal });
    // stale is the registry's judgement at the moment of the listing, not part of the entry: agent-services' file has no such field.
    const vms = listing.vms.map(({ stale: _judged, ...entry }) => entry);
    const text = jsonText({ vms });
    const out = stringOption(context, 'out');
    if (out === undefined) return context.print(text);
    writeFileSync(out, text);
    context.note(`exported ${vms.length} VMs to ${out}`);
  },
};
