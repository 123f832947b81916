/**
 * The health checks' target: bare node:http, in a process of its own so that the registry's
 * CPU is measured apart from it, answering every GET with 200 "ok" on kept-alive connections,
 * as a healthy service's /health would. It listens on several ports of 127.0.0.1 because a
 * swarm's services are on as many hosts as VMs, and the checker keeps a few connections per
 * host: all of them on one port would measure that per-host cap, not the checker. Started by
 * bench/health.ts, which it tells its ports over IPC.
 */
import { createServer, type Server } from 'node:http';

const PORTS = 64;

const listening = (server: Server) =>
  new Promise<number>((resolve) => {
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });

const ports = await Promise.all(Array.from({ length: PORTS }, () => listening(createServer((_request, response) => response.end('ok')))));
process.send!({ ports });
// The parent going away (a crash, Ctrl-C) must not leave this process serving forever.
process.on('disconnect', () => process.exit(0));
