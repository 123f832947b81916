/**
 * The registry the scenarios run against: one infra VM (discover with one match), 1% of N
 * lieutenants (discover 1%), and workers for the rest, each with the services and metadata
 * of the seed's examples so entries are the size real ones are.
 */

export const ONE_MATCH_ROLE = 'infra';
export const ONE_PERCENT_ROLE = 'lieutenant';

export const vmId = (index: number) => `bench-vm-${index.toString().padStart(6, '0')}`;

export function roleOf(index: number): string {
  if (index === 0) return ONE_MATCH_ROLE;
  // Index 1, 101, 201, …: exactly N/100 of them for the reference sizes.
  return index % 100 === 1 ? ONE_PERCENT_ROLE : 'worker';
}

/** Where a VM's pi-rpc service answers: its own host name unless a benchmark points it at a real server. */
export interface ServiceAt {
  address: string;
  port: number;
}

/** A registration body for a VM with this id and role, shaped like the seed's examples. */
export function registration(id: string, role: string, at: ServiceAt = { address: `${id}.vm.vers.sh`, port: 3001 }): string {
  return JSON.stringify({
    id,
    name: `${role}-${id.slice(-6)}`,
    role,
    address: at.address,
    registeredBy: 'bench-orchestrator',
    services: [{ name: 'pi-rpc', port: at.port, healthPath: '/health' }],
    metadata: { task: 'process invoices', swarm: 'bench' },
  });
}

export const randomPreloadedId = (n: number) => vmId(Math.floor(Math.random() * n));
