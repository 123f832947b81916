import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Clock } from '../domain/clock.js';
import { LIMITS } from '../domain/schemas.js';
import type { RegistryStore } from '../store/store.js';
import { requireBearerToken } from './auth.js';
import { installErrorHandling, installJsonBodyParser } from './http-errors.js';
import { ChangeFeed } from './change-feed.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { startSweeper, type SweeperOptions } from './sweeper.js';
import { importRoutes } from './routes/import.js';
import { vmRoutes } from './routes/vms.js';
import { VERSION } from './version.js';

export interface AppOptions {
  store: RegistryStore;
  clock: Clock;
  /** With a token, every /registry route needs `Authorization: Bearer <token>`. */
  authToken?: string;
  logger?: FastifyBaseLogger;
  /** Comment lines on idle event streams; 15 s keeps common proxies from closing them. */
  keepAliveMs?: number;
  /** The sweeper that turns time into stale and reaped events; off when undefined (tests drive it). */
  sweeper?: SweeperOptions;
}

/**
 * Builds the HTTP application around a store and a clock. Tests build it in-process with
 * a manual clock; `vm-registry serve` builds it with the real ones and listens.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { store, clock } = options;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: LIMITS.bodyBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Slow or stalled clients must not hold sockets and memory forever.
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    forceCloseConnections: 'idle',
    // One line per request at info would be 800 lines a second from 100k heartbeating VMs.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: {
      customOptions: {
        // Wrong types are the client's mistake to hear about, not to have silently converted;
        // unknown fields are rejected rather than dropped, so a typo never goes unnoticed.
        coerceTypes: false,
        removeAdditional: false,
        allErrors: false,
        verbose: true,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installJsonBodyParser(app, LIMITS.bodyBytes);
  installErrorHandling(app, LIMITS.bodyBytes);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    const level = status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
    request.log[level](
      { method: request.method, url: request.url, status, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
  });

  const feed = await ChangeFeed.start(store, options.logger);
  const sweeper = options.sweeper && startSweeper(store, options.sweeper, options.logger);
  app.addHook('onClose', async () => {
    sweeper?.stop();
    feed.close();
  });

  await app.register(healthRoutes, { store, clock, feed, startedAt: clock.now(), version: VERSION });
  await app.register(
    async (registry) => {
      if (options.authToken) registry.addHook('onRequest', requireBearerToken(options.authToken));
      await registry.register(vmRoutes, { store, feed });
      await registry.register(eventRoutes, { store, feed, keepAliveMs: options.keepAliveMs ?? 15_000 });
      await registry.register(importRoutes, { store, clock });
    },
    { prefix: '/registry' },
  );
  return app;
}
