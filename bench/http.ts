import { Agent, request, type IncomingHttpHeaders } from 'node:http';

export interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface SendOptions {
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer …`, as every agent of a swarm with auth on does. */
  token?: string;
  /**
   * The loopback address the request leaves from (any of 127.0.0.0/8 on Linux): the swarm
   * gives its agents addresses of their own, since the server counts its per-caller limits
   * per token and address, and a real swarm's agents are on VMs of their own.
   */
  localAddress?: string;
  /** Aborts the request, such as a blocking query still waiting when the run ends. */
  signal?: AbortSignal;
  /** The connection pool to use instead of the shared one. */
  agent?: Agent;
}

/** Keep-alive, so preloading measures the server rather than TCP handshakes; one pool per local address. */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** Headers every request of an agent carries: its bearer token, if it has one. */
export const authorization = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** One request outside autocannon: preloading, capturing the bytes a scenario answers, SSE writes, the swarm. */
export function send(url: string, method: string, body?: string, options: SendOptions = {}): Promise<Exchange> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent: options.agent ?? agent,
        localAddress: options.localAddress,
        signal: options.signal,
        headers: {
          ...authorization(options.token),
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    // ETIMEDOUT as its code, so that a summary counts timeouts as one kind rather than one per URL.
    req.on('timeout', () => req.destroy(Object.assign(new Error(`${method} ${url} got no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** Lets the process exit once the benchmark is done instead of waiting for idle sockets to time out. */
export const closeConnections = () => agent.destroy();
