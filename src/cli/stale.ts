import type { ListOptions, RegistryClient } from '../client/index.js';

/**
 * The ids the registry itself counts as stale. Asking the server, rather than comparing
 * lastSeen with this machine's clock, keeps the answer right when the clocks disagree.
 */
export async function staleIds(client: RegistryClient, filter: Omit<ListOptions, 'stale'> = {}): Promise<Set<string>> {
  if (filter.status !== undefined && filter.status !== 'running') return new Set();
  const { vms } = await client.list({ ...filter, status: 'running', stale: true });
  return new Set(vms.map((vm) => vm.id));
}
