import { Agent, request, type IncomingHttpHeaders } from 'node:http';

export interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Keep-alive, so preloading measures the server rather than TCP handshakes. */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** One request outside autocannon: preloading, capturing the bytes a scenario answers, SSE writes. */
export function send(url: string, method: string, body?: string, timeoutMs = 30_000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} got no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Lets the process exit once the benchmark is done instead of waiting for idle sockets to time out. */
export const closeConnections = () => agent.destroy();
