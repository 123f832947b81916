import { Type, type Static, type TObject } from '@sinclair/typebox';
import type { RegistryClient, Vm } from '../client/index.js';
import { RegistrationSchema, RoleSchema, VmIdSchema, VmUpdateSchema } from '../domain/schemas/vm.js';
import { DiscoverFilterSchema, ListQuerySchema, RoleParamsSchema, VmIdParamsSchema } from '../domain/schemas/query.js';
import { vmLines, vmText } from './format.js';

/** Where this agent runs, when it was started on a Vers VM. */
export interface Self {
  id?: string;
  name?: string;
}

/** This agent's identity, from the environment Vers sets up. */
export function selfFromEnv(env: NodeJS.ProcessEnv = process.env): Self {
  const id = env.VERS_VM_ID?.trim() || undefined;
  return { id, name: env.VERS_AGENT_NAME?.trim() || id };
}

/** What a tool knows of its caller besides the registry: the host supplies it per call. */
export interface ToolContext {
  self: Self;
  /** registeredBy when the agent gives none and this agent has no name of its own. */
  agent: string;
  signal?: AbortSignal;
}

/** Short text an agent can act on, and the same facts as an object for programs. */
export interface ToolResult {
  text: string;
  details: Record<string, unknown>;
}

/**
 * One agent tool, independent of the host: pi (src/pi) and MCP (src/mcp) are both built
 * from REGISTRY_TOOLS. A failure is thrown; the host turns it into advice with agentError.
 */
export interface RegistryTool<T extends TObject = TObject> {
  name: string;
  /** A short title for people. */
  label: string;
  description: string;
  parameters: T;
  run(registry: RegistryClient, params: Static<T>, context: ToolContext): Promise<ToolResult>;
}

/** Keeps each definition's parameters and handler types tied together inside the shared list. */
const tool = <T extends TObject>(definition: RegistryTool<T>) => definition as unknown as RegistryTool;

const RegisterParams = Type.Object(
  {
    ...RegistrationSchema.properties,
    // Optional for agents: it defaults to this agent's name.
    registeredBy: Type.Optional(RegistrationSchema.properties.registeredBy),
    replace: Type.Optional(
      Type.Boolean({ description: 'Overwrite an existing registration with this id instead of failing (idempotent).' }),
    ),
  },
  { additionalProperties: false },
);

const ListParams = Type.Object(
  {
    ...ListQuerySchema.properties,
    stale: Type.Optional(Type.Boolean({ description: 'true: only VMs that stopped heartbeating; false: leave those out.' })),
  },
  { additionalProperties: false },
);

const DiscoverParams = Type.Object({ ...RoleParamsSchema.properties, ...DiscoverFilterSchema.properties }, { additionalProperties: false });

const HeartbeatParams = Type.Object({ id: Type.Optional(VmIdSchema) }, { additionalProperties: false });

const UpdateParams = Type.Object({ id: VmIdSchema, ...VmUpdateSchema.properties }, { additionalProperties: false });

const WaitParams = Type.Object(
  {
    role: Type.Optional(RoleSchema),
    name: Type.Optional(Type.String({ minLength: 1, description: 'The VM name to wait for, such as "billing-lt".' })),
    id: Type.Optional(VmIdSchema),
    timeoutSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 600, description: 'Give up after this many seconds (default 60).' }),
    ),
  },
  { additionalProperties: false },
);

function describeWanted({ role, name, id }: Static<typeof WaitParams>): string {
  return [`running ${role ?? 'VM'}`, name && `named ${name}`, id && `with id ${id}`].filter(Boolean).join(' ');
}

export const REGISTRY_TOOLS: RegistryTool[] = [
  tool({
    name: 'registry_register',
    label: 'Register VM',
    description:
      'Register a VM in the swarm registry so other agents can discover it, for example right after creating a ' +
      'lieutenant or an infra VM. registeredBy defaults to this agent. Fails if the id is already registered ' +
      'unless replace is true.',
    parameters: RegisterParams,
    async run(registry, { replace, ...params }, { self, agent, signal }) {
      const registration = { ...params, registeredBy: params.registeredBy ?? self.name ?? agent };
      const { vm, created } = replace
        ? await registry.put(registration, { signal })
        : { vm: await registry.register(registration, { signal }), created: true };
      return { text: `${created ? 'Registered' : 'Replaced'} ${vmText(vm)}`, details: { vm, created } };
    },
  }),
  tool({
    name: 'registry_list',
    label: 'List VMs',
    description:
      'List registered VMs, optionally by role, status, health (passing, critical, unknown) and service, newest ' +
      'registration first. Use it to see everything, including paused, stopped, stale and failing VMs; to find a ' +
      'live service, prefer registry_discover.',
    parameters: ListParams,
    async run(registry, params, { signal }) {
      const listing = await registry.list({ ...params, signal });
      const text = listing.count === 0 ? 'No VMs match.' : `${listing.count} VMs:\n${vmLines(listing.vms)}`;
      return { text, details: listing };
    },
  }),
  tool({
    name: 'registry_discover',
    label: 'Discover VMs',
    description:
      'Find the running, recently heartbeating VMs of a role (infra, lieutenant, worker, golden, custom), newest ' +
      'first. The usual way to locate a service: discover infra to get the board and feed address. When the ' +
      'registry checks health, VMs with a critical service are left out (health "any" keeps them); service ' +
      'keeps only VMs offering that service, and then only its health counts.',
    parameters: DiscoverParams,
    async run(registry, { role, health, service }, { signal }) {
      const listing = await registry.discover(role, { signal, health, service });
      const offering = service === undefined ? '' : ` offering ${service}`;
      if (listing.count > 0) {
        const text = `${listing.count} running ${role} VM${listing.count === 1 ? '' : 's'}${offering}, newest first:\n${vmLines(listing.vms)}`;
        return { text, details: listing };
      }
      // An empty answer may hide VMs that are up but failing their checks: say which, and why.
      const failing = health === undefined ? (await registry.discover(role, { signal, health: 'critical', service })).vms : [];
      const text =
        failing.length === 0
          ? `No running ${role} VMs${offering} are registered (or none has heartbeated recently).`
          : `No running ${role} VM${offering} passes its health checks; left out for a critical service:\n${vmLines(failing)}\n` +
            'Pass health "any" to discover them anyway.';
      return { text, details: listing };
    },
  }),
  tool({
    name: 'registry_heartbeat',
    label: 'Heartbeat',
    description:
      'Tell the registry a VM is alive. VMs without a heartbeat for 5 minutes count as stale and drop out of ' +
      'discovery, so send one every 2 minutes for VMs you keep alive. Without an id it beats for this agent\'s own ' +
      'VM ($VERS_VM_ID), which the pi extension already does by itself.',
    parameters: HeartbeatParams,
    async run(registry, params, { self, signal }) {
      const id = params.id ?? self.id;
      if (!id) throw new Error('Pass the id of the VM: this agent is not on a registered VM (VERS_VM_ID is not set).');
      const beat = await registry.heartbeat(id, { signal });
      return { text: `Heartbeat recorded for ${beat.id}; lastSeen ${beat.lastSeen}.`, details: beat };
    },
  }),
  tool({
    name: 'registry_get',
    label: 'Get VM',
    description: 'Show everything the registry holds about one VM, by id.',
    parameters: VmIdParamsSchema,
    async run(registry, { id }, { signal }) {
      const vm = await registry.get(id, { signal });
      return { text: vmText(vm), details: { vm } };
    },
  }),
  tool({
    name: 'registry_update',
    label: 'Update VM',
    description:
      'Change the name, status, address, services or metadata of a registered VM, for example status "paused" ' +
      'when pausing it. services and metadata are replaced as a whole.',
    parameters: UpdateParams,
    async run(registry, { id, ...changes }, { signal }) {
      const vm = await registry.update(id, changes, { signal });
      return { text: `Updated ${vmText(vm)}`, details: { vm } };
    },
  }),
  tool({
    name: 'registry_deregister',
    label: 'Deregister VM',
    description: 'Remove a VM from the registry, for example after deleting it. Other agents will no longer find it.',
    parameters: VmIdParamsSchema,
    async run(registry, { id }, { signal }) {
      const deleted = await registry.deregister(id, { signal });
      return { text: `Deregistered ${deleted.id}.`, details: deleted };
    },
  }),
  tool({
    name: 'registry_wait',
    label: 'Wait for VM',
    description:
      'Wait until a running, heartbeating VM matching role, name and/or id is registered, for example a ' +
      'lieutenant you just created, then return it. Gives up after timeoutSeconds (default 60, at most 600) and ' +
      'says so. The registry tells the tool about each change, so it answers as soon as the VM appears.',
    parameters: WaitParams,
    async run(registry, params, { signal }) {
      const { role, name, id, timeoutSeconds = 60 } = params;
      if (role === undefined && name === undefined && id === undefined) {
        throw new Error('Say what to wait for: pass at least one of role, name and id.');
      }
      const matches = (vm: Vm) => (name === undefined || vm.name === name) && (id === undefined || vm.id === id);
      const deadline = Date.now() + timeoutSeconds * 1000;
      let index: number | undefined;
      for (;;) {
        // Each round is a blocking query: the registry answers as soon as anything changes.
        const wait = index === undefined ? undefined : Math.max(1, deadline - Date.now());
        const listing = role
          ? await registry.discover(role, { signal, index, wait })
          : await registry.list({ status: 'running', signal, index, wait });
        const vm = listing.vms.find(matches);
        if (vm) return { text: `Found ${vmText(vm)}`, details: { found: true, vm } };
        if (Date.now() >= deadline) {
          return {
            text:
              `Gave up after ${timeoutSeconds}s: no ${describeWanted(params)} is registered and heartbeating. ` +
              'Call registry_list to see what is there (it may be paused, stopped or stale), or wait longer.',
            details: { found: false, revision: listing.revision },
          };
        }
        index = listing.revision;
      }
    },
  }),
];
