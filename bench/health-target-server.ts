/**
 * The health checks' target: a bare node:http server, in a process of its own so that the
 * registry's CPU is measured apart from it, answering every GET with 200 "ok" on kept-alive
 * connections, as a healthy service's /health would. Started by bench/health.ts over IPC.
 */
import { createServer } from 'node:http';

const server = createServer((_request, response) => response.end('ok'));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
// The parent going away (a crash, Ctrl-C) must not leave this process serving forever.
process.on('disconnect', () => process.exit(0));
