import { serveStdio } from '../../mcp/stdio.js';
import { stringOption, type Command } from '../command.js';

export const mcp: Command = {
  name: 'mcp',
  summary: 'Serve the registry tools to an MCP client (Claude Code, Cursor, …) over stdin/stdout.',
  details:
    'Started by the MCP client, not by hand: it speaks the Model Context Protocol on stdout and logs\n' +
    'to stderr. Tools, resources (registry://vms/{id}, registry://discover/{role}, subscribable) and\n' +
    'the registry_guide prompt act on the registry at --url / VERS_INFRA_URL with --token /\n' +
    'VERS_AUTH_TOKEN. A missing or unreachable registry is reported by each tool call, not at start.\n' +
    'A remote agent can skip this command and use the server\'s own /mcp endpoint instead.',
  connects: true,
  async run(context) {
    const url = stringOption(context, 'url');
    const token = stringOption(context, 'token');
    await serveStdio({ ...(url !== undefined && { url }), ...(token !== undefined && { token }) }, context.signal);
  },
};
