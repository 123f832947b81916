import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

interface Session {
  transport: StreamableHTTPServerTransport;
  /** The token name that opened it: only that token may use it. */
  owner: string | undefined;
  /** Open GET streams: a session listening for notifications is in use even when it sends nothing. */
  streams: number;
  lastUsed: number;
}

export interface McpSessionOptions {
  /** A fresh MCP server for each new session. */
  createServer(): Server;
  /** A session with no request and no open stream for this long is closed. */
  idleMs: number;
  /** SSE keep-alive comments on open streams, so that proxies do not close them. */
  keepAliveMs: number;
}

function answer(res: ServerResponse, status: number, error: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error }));
}

/**
 * Streamable HTTP sessions: stateful, because subscriptions and the GET notification stream
 * belong to one client. A session is opened by an initialize POST, named by the
 * Mcp-Session-Id header after that, closed by DELETE, and expires when idle.
 */
export class McpHttpSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly options: McpSessionOptions) {
    this.sweep = setInterval(() => this.closeIdle(), Math.min(options.idleMs, 60_000));
    this.sweep.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** One request to the MCP endpoint; `body` is the already parsed JSON of a POST. */
  async handle(req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse, body: unknown, owner: string | undefined): Promise<void> {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const session = this.sessions.get(id);
      if (!session) return answer(res, 404, `no MCP session ${id}: it was closed or expired; initialize a new one`);
      if (session.owner !== owner) return answer(res, 403, 'this MCP session was opened with another token');
      session.lastUsed = Date.now();
      if (req.method === 'GET') {
        session.streams++;
        res.once('close', () => {
          session.streams--;
          session.lastUsed = Date.now();
        });
      }
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return answer(res, 400, 'send an MCP initialize request first, then its Mcp-Session-Id header with every request');
    }
    const server = this.options.createServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      keepAliveMs: this.options.keepAliveMs,
      onsessioninitialized: (sessionId) => {
        this.sessions.set(sessionId, { transport, owner, streams: 0, lastUsed: Date.now() });
      },
      onsessionclosed: (sessionId) => {
        this.sessions.delete(sessionId);
      },
    });
    // The server hears of the close through the transport (connect chains onclose) and drops its subscriptions.
    transport.onclose = () => {
      if (transport.sessionId) this.sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  /** Ends every session (their open streams would otherwise hold a shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweep);
    await Promise.all([...this.sessions.values()].map((session) => session.transport.close()));
    this.sessions.clear();
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.options.idleMs;
    for (const session of this.sessions.values()) {
      if (session.streams === 0 && session.lastUsed < cutoff) void session.transport.close();
    }
  }
}
