import { readFileSync } from 'node:fs';
import { argument, UsageError, type Command } from '../command.js';
import { jsonText } from '../output.js';
import type { ImportedVm } from '../../client/index.js';

function readEntries(file: string): ImportedVm[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not JSON: ${(error as Error).message}`);
  }
  const vms = (parsed as { vms?: unknown } | null)?.vms;
  if (!Array.isArray(vms)) throw new UsageError(`${file} must hold {"vms": [...]}, as agent-services' data/registry.json does`);
  return vms as ImportedVm[];
}

export const importCommand: Command = {
  name: 'import',
  summary: 'Load VMs from agent-services\' data/registry.json (or an export), keeping registeredAt and lastSeen.',
  args: 'FILE',
  details:
    'FILE holds {"vms": [...]} with full entries; "-" reads stdin. Entries that exist are replaced.\n' +
    'All or nothing: the registry checks every entry first and names the first one that is wrong.',
  positionals: { min: 1, max: 1 },
  connects: true,
  async run(context) {
    const file = argument(context);
    const summary = await context.client().import(readEntries(file), { signal: context.signal });
    if (context.json) return context.print(jsonText(summary));
    context.print(`imported ${summary.imported} VMs from ${file === '-' ? 'stdin' : file} (${summary.created} new, ${summary.replaced} replaced)`);
  },
};
