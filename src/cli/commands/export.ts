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
    const { vms } = await context.client().list({ signal: context.signal });
    const text = jsonText({ vms });
    const out = stringOption(context, 'out');
    if (out === undefined) return context.print(text);
    writeFileSync(out, text);
    context.note(`exported ${vms.length} VMs to ${out}`);
  },
};
