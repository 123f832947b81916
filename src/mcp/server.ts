import { readFileSync } from 'node:fs';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { RegistryError, type RegistryClient } from '../client/index.js';
import { ROLES } from '../domain/schemas/vm.js';
import { VERSION } from '../domain/version.js';
import { agentError, REGISTRY_TOOLS, type Self } from '../tools/index.js';
import { argumentProblem } from './arguments.js';
import { parseResourceUri, RESOURCE_TEMPLATES, resourceUri, touches, type RegistryResource } from './resources.js';

export type RequestExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** A registry change as a subscriber needs it: which VM, or none when everything may have changed (a resync). */
export interface Change {
  vm?: { id: string; role: string };
}

/**
 * Starts delivering changes to the listener; resolves once every change after this moment
 * will be delivered, with the function that stops it.
 */
export type ChangeSource = (listener: (change: Change) => void) => Promise<() => void>;

export interface RegistryMcpOptions {
  /** A registry client acting for the caller of this request (its token, its scopes). */
  client(extra: RequestExtra): RegistryClient;
  self(): Self;
  changes: ChangeSource;
  /** What to restart after fixing the environment: goes into the advice for a missing URL. */
  restart: string;
  /** Diagnostics, never to stdout (stdio serves the protocol there). */
  log(message: string): void;
}

const GUIDE_PROMPT = 'registry_guide';

/** The skill file pi agents get, so that an MCP client without it learns the same patterns. */
function guideText(): string {
  const skill = readFileSync(new URL('../../../skills/vm-registry/SKILL.md', import.meta.url), 'utf8');
  return skill.replace(/^---\n[\s\S]*?\n---\n+/, '');
}

const failure = (text: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text }] });

/**
 * One MCP server (one client connection) over the registry, built from REGISTRY_TOOLS: the
 * tools with their TypeBox schemas as JSON Schema, registry://vms/{id} and
 * registry://discover/{role} as subscribable resources, and the skill as a prompt.
 */
export function createRegistryMcpServer(options: RegistryMcpOptions): Server {
  const server = new Server(
    { name: 'vm-registry', version: VERSION },
    {
      capabilities: { tools: {}, resources: { subscribe: true }, prompts: {} },
      instructions:
        'Service discovery for the VMs of an agent swarm: discover VMs by role instead of remembering addresses, ' +
        `register the VMs you create, heartbeat the ones you keep. The ${GUIDE_PROMPT} prompt explains the patterns.`,
    },
  );
  const tools = new Map(REGISTRY_TOOLS.map((tool) => [tool.name, tool]));
  const agent = () => server.getClientVersion()?.name ?? 'mcp-agent';

  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: REGISTRY_TOOLS.map(({ name, label, description, parameters }) => ({
      name,
      title: label,
      description,
      inputSchema: parameters as { type: 'object' },
    })),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name, arguments: args = {} } = request.params;
    const tool = tools.get(name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `unknown tool "${name}"; tools/list names the registry tools`);
    const problem = argumentProblem(tool, args);
    if (problem) return failure(`Invalid arguments: ${problem}. Fix the named field and call ${name} again.`);
    try {
      const { text, details } = await tool.run(options.client(extra), args as never, {
        self: options.self(),
        agent: agent(),
        signal: extra.signal,
      });
      return { content: [{ type: 'text', text }], structuredContent: details };
    } catch (error) {
      return failure(agentError(error, options.restart).message);
    }
  });

  const resource = (uri: string): RegistryResource => {
    const parsed = parseResourceUri(uri);
    if (typeof parsed === 'string') throw new McpError(ErrorCode.InvalidParams, parsed);
    return parsed;
  };

  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: RESOURCE_TEMPLATES }));
  // The VMs themselves could be thousands: the templates reach them; the list names the fixed set.
  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: ROLES.map((role) => ({
      uri: resourceUri({ kind: 'discover', role }),
      name: `discover-${role}`,
      title: `Running ${role} VMs`,
      mimeType: 'application/json',
    })),
  }));

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const { uri } = request.params;
    const target = resource(uri);
    try {
      const registry = options.client(extra);
      const body =
        target.kind === 'vm'
          ? await registry.get(target.id, { signal: extra.signal })
          : await registry.discover(target.role, { signal: extra.signal });
      return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(body) }] };
    } catch (error) {
      // -32002 is MCP's "resource not found".
      const code = error instanceof RegistryError && error.statusCode === 404 ? -32002 : ErrorCode.InternalError;
      throw new McpError(code, agentError(error, options.restart).message);
    }
  });

  const subscriptions = new Map<string, RegistryResource>();
  let stopWatching: Promise<() => void> | undefined;
  const onChange = (change: Change) => {
    for (const [uri, target] of subscriptions) {
      if (change.vm && !touches(target, change.vm)) continue;
      server.sendResourceUpdated({ uri }).catch((error: Error) => options.log(`vm-registry mcp: could not notify ${uri}: ${error.message}`));
    }
  };
  const unwatch = () => {
    const stopping = stopWatching;
    stopWatching = undefined;
    void stopping?.then((stop) => stop(), () => undefined);
  };

  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    const { uri } = request.params;
    const target = resource(uri);
    // Answered only once changes flow, so that a change right after the answer is never missed.
    stopWatching ??= options.changes(onChange);
    try {
      await stopWatching;
    } catch (error) {
      stopWatching = undefined;
      throw new McpError(ErrorCode.InternalError, `cannot watch the registry: ${agentError(error, options.restart).message}`);
    }
    subscriptions.set(uri, target);
    return {};
  });

  server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    subscriptions.delete(request.params.uri);
    if (subscriptions.size === 0) unwatch();
    return {};
  });

  server.onclose = () => {
    subscriptions.clear();
    unwatch();
  };

  server.setRequestHandler(ListPromptsRequestSchema, () => ({
    prompts: [
      {
        name: GUIDE_PROMPT,
        title: 'How to use the VM registry',
        description: 'When to discover, register, heartbeat, update and deregister VMs, and what the errors mean.',
      },
    ],
  }));

  server.setRequestHandler(GetPromptRequestSchema, (request) => {
    if (request.params.name !== GUIDE_PROMPT) {
      throw new McpError(ErrorCode.InvalidParams, `unknown prompt "${request.params.name}"; the one prompt is ${GUIDE_PROMPT}`);
    }
    return {
      description: 'The registry patterns of the vm-registry skill',
      messages: [{ role: 'user', content: { type: 'text', text: guideText() } }],
    };
  });

  return server;
}
