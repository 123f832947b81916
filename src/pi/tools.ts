import type { ToolDefinition } from '@mariozechner/pi-coding-agent';
import type { RegistryClient } from '../client/index.js';
import { agentError, REGISTRY_TOOLS, type Self } from '../tools/index.js';

/** The registry tools as pi tools: a fresh client per call (so env changes apply), errors thrown as advice. */
export function piTools(client: () => RegistryClient, self: () => Self): ToolDefinition[] {
  return REGISTRY_TOOLS.map(
    (tool): ToolDefinition => ({
      name: tool.name,
      label: tool.label,
      description: tool.description,
      parameters: tool.parameters,
      async execute(_toolCallId, params, signal) {
        try {
          const { text, details } = await tool.run(client(), params as never, { self: self(), agent: 'pi-agent', signal });
          return { content: [{ type: 'text', text }], details };
        } catch (error) {
          throw agentError(error);
        }
      },
    }),
  );
}
