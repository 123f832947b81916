import { ROLES, type Role } from '../domain/schemas/vm.js';

/** The registry as MCP resources: one VM, and the running set of a role as discover answers it. */
export type RegistryResource = { kind: 'vm'; id: string } | { kind: 'discover'; role: Role };

export const RESOURCE_TEMPLATES = [
  {
    uriTemplate: 'registry://vms/{id}',
    name: 'vm',
    title: 'A registered VM',
    description: 'Everything the registry holds about one VM, as JSON. Subscribe to hear when it changes or goes away.',
    mimeType: 'application/json',
  },
  {
    uriTemplate: 'registry://discover/{role}',
    name: 'discover',
    title: 'Running VMs of a role',
    description: `The running, heartbeating VMs of a role (${ROLES.join(', ')}), newest first, as JSON. Subscribe to hear when the set changes.`,
    mimeType: 'application/json',
  },
];

export const resourceUri = (resource: RegistryResource) =>
  resource.kind === 'vm' ? `registry://vms/${encodeURIComponent(resource.id)}` : `registry://discover/${resource.role}`;

/** The resource a URI names, or why it names none. */
export function parseResourceUri(uri: string): RegistryResource | string {
  const vm = /^registry:\/\/vms\/([^/]+)$/.exec(uri);
  if (vm) return { kind: 'vm', id: decodeURIComponent(vm[1]) };
  const discover = /^registry:\/\/discover\/([^/]+)$/.exec(uri);
  if (discover) {
    const role = discover[1] as Role;
    return ROLES.includes(role) ? { kind: 'discover', role } : `unknown role "${role}" in ${uri}; roles are ${ROLES.join(', ')}`;
  }
  return `unknown resource ${uri}: use registry://vms/{id} or registry://discover/{role}`;
}

/** Whether a change to this VM may change the resource (for discover: any VM of the role, leaving or joining). */
export function touches(resource: RegistryResource, vm: { id: string; role: string }): boolean {
  return resource.kind === 'vm' ? vm.id === resource.id : vm.role === resource.role;
}
