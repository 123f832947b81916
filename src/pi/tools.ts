import type { ToolDefinition } from '@mariozechner/pi-coding-agent';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { RegistryClient } from '../client/index.js';
import {
  ListQuerySchema,
  RegistrationSchema,
  RoleParamsSchema,
  VmIdParamsSchema,
  VmIdSchema,
  VmUpdateSchema,
} from '../domain/schemas.js';
import { agentError } from './errors.js';
import { vmLines, vmText } from './format.js';

interface RegistryTool<T extends TSchema> {
  name: string;
  label: string;
  description: string;
  parameters: T;
  run(client: RegistryClient, params: Static<T>, signal: AbortSignal | undefined): Promise<{ text: string; details: unknown }>;
}

/** Wraps a registry call as a pi tool: a fresh client per call (so env changes apply), errors rewritten as advice. */
function define<T extends TSchema>(tool: RegistryTool<T>, client: () => RegistryClient): ToolDefinition {
  return {
    name: tool.name,
    label: tool.label,
    description: tool.description,
    parameters: tool.parameters,
    async execute(_toolCallId, params, signal) {
      try {
        const { text, details } = await tool.run(client(), params as Static<T>, signal);
        return { content: [{ type: 'text', text }], details };
      } catch (error) {
        throw agentError(error);
      }
    },
  };
}

/** Where this agent runs, when pi was started on a Vers VM. */
export interface Self {
  id?: string;
  name?: string;
}

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

const HeartbeatParams = Type.Object(
  { id: Type.Optional(VmIdSchema) },
  { additionalProperties: false },
);

const UpdateParams = Type.Object({ id: VmIdSchema, ...VmUpdateSchema.properties }, { additionalProperties: false });

export function registryTools(client: () => RegistryClient, self: () => Self): ToolDefinition[] {
  const tools = [
    define(
      {
        name: 'registry_register',
        label: 'Register VM',
        description:
          'Register a VM in the swarm registry so other agents can discover it, for example right after creating a ' +
          'lieutenant or an infra VM. registeredBy defaults to this agent. Fails if the id is already registered ' +
          'unless replace is true.',
        parameters: RegisterParams,
        async run(registry, { replace, ...params }, signal) {
          const registration = { ...params, registeredBy: params.registeredBy ?? self().name ?? 'pi-agent' };
          const { vm, created } = replace
            ? await registry.put(registration, { signal })
            : { vm: await registry.register(registration, { signal }), created: true };
          return { text: `${created ? 'Registered' : 'Replaced'} ${vmText(vm)}`, details: { vm, created } };
        },
      },
      client,
    ),
    define(
      {
        name: 'registry_list',
        label: 'List VMs',
        description:
          'List registered VMs, optionally by role and status, newest registration first. Use it to see everything, ' +
          'including paused, stopped and stale VMs; to find a live service, prefer registry_discover.',
        parameters: ListParams,
        async run(registry, params, signal) {
          const listing = await registry.list({ ...params, signal });
          const text = listing.count === 0 ? 'No VMs match.' : `${listing.count} VMs:\n${vmLines(listing.vms)}`;
          return { text, details: listing };
        },
      },
      client,
    ),
    define(
      {
        name: 'registry_discover',
        label: 'Discover VMs',
        description:
          'Find the running, recently heartbeating VMs of a role (infra, lieutenant, worker, golden, custom), newest ' +
          'first. The usual way to locate a service: discover infra to get the board and feed address.',
        parameters: RoleParamsSchema,
        async run(registry, { role }, signal) {
          const listing = await registry.discover(role, { signal });
          const text =
            listing.count === 0
              ? `No running ${role} VMs are registered (or none has heartbeated recently).`
              : `${listing.count} running ${role} VM${listing.count === 1 ? '' : 's'}, newest first:\n${vmLines(listing.vms)}`;
          return { text, details: listing };
        },
      },
      client,
    ),
    define(
      {
        name: 'registry_heartbeat',
        label: 'Heartbeat',
        description:
          'Tell the registry a VM is alive. VMs without a heartbeat for 5 minutes count as stale and drop out of ' +
          'discovery, so send one every 2 minutes for VMs you keep alive. Without an id it beats for this agent\'s own ' +
          'VM ($VERS_VM_ID), which the extension already does by itself.',
        parameters: HeartbeatParams,
        async run(registry, params, signal) {
          const id = params.id ?? self().id;
          if (!id) throw new Error('Pass the id of the VM: this agent is not on a registered VM (VERS_VM_ID is not set).');
          const beat = await registry.heartbeat(id, { signal });
          return { text: `Heartbeat recorded for ${beat.id}; lastSeen ${beat.lastSeen}.`, details: beat };
        },
      },
      client,
    ),
    define(
      {
        name: 'registry_get',
        label: 'Get VM',
        description: 'Show everything the registry holds about one VM, by id.',
        parameters: VmIdParamsSchema,
        async run(registry, { id }, signal) {
          const vm = await registry.get(id, { signal });
          return { text: vmText(vm), details: { vm } };
        },
      },
      client,
    ),
    define(
      {
        name: 'registry_update',
        label: 'Update VM',
        description:
          'Change the name, status, address, services or metadata of a registered VM, for example status "paused" ' +
          'when pausing it. services and metadata are replaced as a whole.',
        parameters: UpdateParams,
        async run(registry, { id, ...changes }, signal) {
          const vm = await registry.update(id, changes, { signal });
          return { text: `Updated ${vmText(vm)}`, details: { vm } };
        },
      },
      client,
    ),
    define(
      {
        name: 'registry_deregister',
        label: 'Deregister VM',
        description: 'Remove a VM from the registry, for example after deleting it. Other agents will no longer find it.',
        parameters: VmIdParamsSchema,
        async run(registry, { id }, signal) {
          const deleted = await registry.deregister(id, { signal });
          return { text: `Deregistered ${deleted.id}.`, details: deleted };
        },
      },
      client,
    ),
  ];
  return tools;
}
