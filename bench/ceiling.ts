import { fork } from 'node:child_process';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Exchange } from './http.js';

/** What the ceiling answers: one exchange captured from our server, as IPC can carry it. */
export interface CannedAnswer {
  status: number;
  headers: OutgoingHttpHeaders;
  /** Base64, so the bytes cross IPC unchanged. */
  body: string;
  sse?: { headers: OutgoingHttpHeaders; frame: string };
}

export interface Ceiling {
  url: string;
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('./ceiling-server.js', import.meta.url));

export function cannedAnswer(exchange: Exchange, sse?: { headers: IncomingHttpHeaders; frame: string }): CannedAnswer {
  return {
    status: exchange.status,
    headers: exchange.headers,
    body: exchange.body.toString('base64'),
    ...(sse && { sse: { headers: sse.headers, frame: sse.frame } }),
  };
}

/** Starts the bare node:http server in its own process, answering with `canned`. */
export function startCeiling(canned: CannedAnswer): Promise<Ceiling> {
  const child = fork(SERVER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the ceiling server did not start within 10 s'));
    }, 10_000);
    child.once('message', ({ port }: { port: number }) => {
      clearTimeout(timer);
      resolve({
        url: `http://127.0.0.1:${port}`,
        stop: async () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error('the ceiling server exited before listening'));
    });
    child.send(canned);
  });
}
