import type { IncomingMessage } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { Type } from '@sinclair/typebox';
import { RegistryClient } from '../../client/index.js';
import { ErrorSchema } from '../../domain/schemas/error.js';
import { McpHttpSessions } from '../../mcp/http.js';
import { createRegistryMcpServer, type ChangeSource } from '../../mcp/server.js';
import { bearerSecret } from '../http/auth.js';
import type { ChangeFeed } from '../feed/change-feed.js';

export interface McpRoutesOptions {
  feed: ChangeFeed;
  /** SSE keep-alive comments on open MCP streams. */
  keepAliveMs: number;
  /** Sessions with no request and no open stream for this long are closed. */
  sessionIdleMs?: number;
}

/** Who is calling: the registry client for tool calls is built from it, per request. */
interface Caller {
  /** The caller's bearer secret; empty when it sent none (an open registry). */
  secret: string;
  ip: string;
  origin: string;
}

/**
 * A fetch that answers from this app in-process (app.inject): the MCP tools call the REST
 * routes with the caller's own Authorization header and address, so scopes, ownership,
 * validation and rate limits are exactly those of REST, with no network hop.
 */
function injectFetch(app: FastifyInstance, ip: string): typeof fetch {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const response = await app.inject({
      method: (init.method ?? 'GET') as HTTPMethods,
      url: url.pathname + url.search,
      headers: init.headers as Record<string, string>,
      ...(init.body != null && { payload: init.body as string }),
      remoteAddress: ip,
      ...(init.signal && { signal: init.signal }),
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      for (const item of [value ?? []].flat()) headers.append(name, String(item));
    }
    return new Response(response.payload, { status: response.statusCode, statusText: response.statusMessage, headers });
  };
}

/** Changes straight from the server's change feed: every change after listening is delivered. */
const feedChanges =
  (feed: ChangeFeed): ChangeSource =>
  async (listener) =>
    // A reset names no VM: every subscription is told to read again.
    feed.listen((change) => listener(change.type === 'reset' ? {} : { vm: change.vm }));

/**
 * POST/GET/DELETE /mcp: the MCP server over Streamable HTTP, behind the same tokens as
 * /registry. Any valid token may connect; each tool call acts with the caller's token, so a
 * read token's write tools fail with the registry's 403 as an isError result.
 */
export const mcpRoutes: FastifyPluginAsync<McpRoutesOptions> = async (app, { feed, keepAliveMs, sessionIdleMs = 30 * 60_000 }) => {
  const sessions = new McpHttpSessions({
    idleMs: sessionIdleMs,
    keepAliveMs,
    createServer: () =>
      createRegistryMcpServer({
        client: (extra) => {
          const caller = extra.authInfo?.extra as unknown as Caller;
          // An explicit empty token: the server's own VERS_AUTH_TOKEN must never stand in for the caller's.
          return new RegistryClient({ url: caller.origin, token: caller.secret, fetch: injectFetch(app, caller.ip) });
        },
        self: () => ({}),
        changes: feedChanges(feed),
        restart: 'reconnect',
        log: (message) => app.log.warn(message),
      }),
  });
  app.addHook('preClose', () => sessions.closeAll());

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller: Caller = {
      secret: bearerSecret(request.headers.authorization) ?? '',
      ip: request.ip,
      origin: `${request.protocol}://${request.host}`,
    };
    const raw = request.raw as IncomingMessage & { auth?: AuthInfo };
    raw.auth = {
      token: caller.secret,
      clientId: request.principal?.name ?? 'anonymous',
      scopes: [...(request.principal?.scopes ?? [])],
      extra: { ...caller },
    };
    // The transport writes the answer (JSON or an SSE stream) itself.
    reply.hijack();
    await sessions.handle(raw, reply.raw, request.body, request.principal?.name);
  };
  const success = (description: string) => ({
    description,
    content: {
      'application/json': { schema: Type.Unknown({ examples: [{ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'registry_discover' }] } }] }) },
      'text/event-stream': { schema: Type.String({ examples: ['event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"registry_discover"}]}}\n\n'] }) },
    },
  });
  const OPERATIONS: Array<{ method: HTTPMethods; summary: string; answer: string }> = [
    { method: 'POST', summary: 'MCP: send a JSON-RPC message (initialize opens a session)', answer: 'The JSON-RPC answer, as JSON or as one event stream.' },
    { method: 'GET', summary: "MCP: open the session's notification stream", answer: 'The event stream of server notifications (resource updates).' },
    { method: 'DELETE', summary: 'MCP: end the session', answer: 'The session is ended.' },
  ];
  for (const { method, summary, answer } of OPERATIONS) {
    app.route({
      method,
      url: '/mcp',
      // The session itself reads no store: tool calls that do report a database outage as tool errors.
      config: { scope: 'read', answersDuringOutage: true },
      schema: {
        summary,
        description:
          'The Model Context Protocol over Streamable HTTP, for MCP clients rather than curl: registry tools, resources and ' +
          'prompts. Stateful sessions: initialize with a POST, then send its Mcp-Session-Id header.',
        response: { 200: success(answer), 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema },
      },
      handler,
    });
  }
};
