import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { HealthHostRule } from '../src/server/ops/health-hosts.js';
import { Prober } from '../src/server/ops/health-probe.js';

const servers: Array<Server | TcpServer> = [];
after(() => {
  for (const server of servers) {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close();
  }
});

/** A node:http target on 127.0.0.1 counting the connections and requests it was sent. */
async function target(answer: RequestListener) {
  const seen = { connections: 0, requests: [] as string[] };
  const server = createServer((request, response) => {
    seen.requests.push(request.url!);
    answer(request, response);
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, seen };
}

const prober = new Prober('http', 500, 10_000, new HealthHostRule(['127.0.0.1'], []));
after(() => prober.close());

/**
 * A check of the same target a moment after the last, as checks come (an interval apart):
 * undici hands a connection back to its pool one turn of the event loop after the answer ended.
 */
async function probeLater(port: number, path = '/health') {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return prober.probe('127.0.0.1', port, path);
}

describe('one health check', () => {
  it('checks of one target share one kept connection', async () => {
    const { port, seen } = await target((_request, response) => response.end('ok'));
    for (let i = 0; i < 5; i++) assert.deepEqual(await probeLater(port), { pass: true, output: 'HTTP 200' });
    assert.equal(seen.requests.length, 5);
    assert.equal(seen.connections, 1);
  });

  it('a kept connection that the target closes as the next check arrives is asked again on a new one, not counted a failure', async () => {
    let connections = 0;
    // Each connection answers one request and drops the next, as a target whose keep-alive ran out just then.
    const server = createTcpServer((socket) => {
      connections++;
      let requests = 0;
      socket.on('data', () => (++requests === 1 ? socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') : socket.destroy()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    assert.deepEqual(await probeLater(port), { pass: true, output: 'HTTP 200' });
    assert.deepEqual(await probeLater(port), { pass: true, output: 'HTTP 200' });
    assert.equal(connections, 2);
  });

  it('a chunked answer is read to its end and its connection kept; a status other than 2xx fails', async () => {
    const { port, seen } = await target((request, response) => {
      response.writeHead(request.url === '/down' ? 503 : 200);
      response.write('still ');
      response.end('here');
    });
    assert.deepEqual(await probeLater(port, '/up'), { pass: true, output: 'HTTP 200' });
    assert.deepEqual(await probeLater(port, '/down'), { pass: false, output: 'HTTP 503', failure: 'status' });
    assert.equal(seen.connections, 1);
  });

  it('an interim answer (103 Early Hints) is not the verdict: the final status is', async () => {
    const { port } = await target((_request, response) => {
      response.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      response.end('ok');
    });
    assert.deepEqual(await prober.probe('127.0.0.1', port, '/health'), { pass: true, output: 'HTTP 200' });
  });

  it('an endless body is not read: the status decides and its connection is closed', async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    const { port } = await target((request, response) => {
      response.writeHead(200);
      const more = () => {
        while (!response.destroyed && response.write('x'.repeat(16_384)));
      };
      response.on('drain', more);
      request.socket.on('close', closed);
      more();
    });
    assert.deepEqual(await probeLater(port), { pass: true, output: 'HTTP 200' });
    await connectionClosed;
  });

  it('an answer whose end is the connection’s end (no length) is read until it closes', async () => {
    const server = createTcpServer((socket) => socket.once('data', () => socket.end('HTTP/1.0 204 No Content\r\n\r\n')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    assert.deepEqual(await prober.probe('127.0.0.1', (server.address() as AddressInfo).port, '/health'), { pass: true, output: 'HTTP 204' });
  });

  it('what is not an HTTP answer fails, naming it', async () => {
    const server = createTcpServer((socket) => socket.once('data', () => socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    assert.deepEqual(await prober.probe('127.0.0.1', (server.address() as AddressInfo).port, '/health'), {
      pass: false,
      output: 'not an HTTP/1.x response',
      failure: 'connection',
    });
  });

  it('a healthPath that could end the request line is never sent', async () => {
    const { port, seen } = await target((_request, response) => response.end('ok'));
    const verdict = await prober.probe('127.0.0.1', port, '/health HTTP/1.1\r\nx-injected: 1\r\n');
    assert.deepEqual(verdict, { pass: false, output: 'invalid request path', failure: 'connection' });
    assert.equal(seen.connections, 0);
  });
});
