import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Clock } from '../domain/clock.js';
import { LIMITS } from '../domain/schemas/vm.js';
import type { RegistryStore } from '../store/store.js';
import rateLimit from '@fastify/rate-limit';
import { addAuthorization } from './http/auth.js';
import { rateLimitOptions } from './http/rate-limit.js';
import { answerFrameworkError, clientErrorAnswerer, installErrorHandling, installJsonBodyParser, MAX_PARAM_LENGTH } from './http/errors.js';
import { ChangeFeed } from './feed/change-feed.js';
import { instrumentStore } from './ops/instrumented-store.js';
import { RegistryMetrics } from './ops/metrics.js';
import { openapiOptions } from './http/openapi.js';
import { refuseUnknownQueryParameters } from './http/unknown-query.js';
import { honourMinIndex } from './http/min-index.js';
import { docsRoutes } from './routes/docs.js';
import { rootRoutes } from './routes/root.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { mcpRoutes } from './routes/mcp.js';
import { metricsRoutes } from './routes/metrics.js';
import { openapiRoutes } from './routes/openapi.js';
import { uiRoutes } from './routes/ui.js';
import { whoamiRoutes } from './routes/whoami.js';
import { TokenRegistry } from './http/tokens.js';
import { startSweeper, type SweeperOptions } from './feed/sweeper.js';
import { HealthChecker, WHOLE_REGISTRY, type HealthCheckSettings, type HealthShare } from './ops/health-checker.js';
import { importRoutes } from './routes/import.js';
import { vmRoutes } from './routes/vms.js';
import { VERSION } from '../domain/version.js';

/** Logger levels at which a 2xx request line is written. */
const LOGS_DEBUG = new Set(['debug', 'trace']);

export const SLOW_CLIENT_TIMEOUTS = { headersMs: 15_000, requestMs: 30_000 };

export interface AppOptions {
  store: RegistryStore;
  clock: Clock;
  /** With a token, every /registry route needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** Every accepted token with its scopes (REGISTRY_TOKENS_FILE plus VERS_AUTH_TOKEN); overrides authToken. */
  tokens?: TokenRegistry;
  /** Serve /metrics without the token even when auth is on (REGISTRY_METRICS_PUBLIC=1). */
  metricsPublic?: boolean;
  logger?: FastifyBaseLogger;
  /** Comment lines on idle event streams; 15 s keeps common proxies from closing them. */
  keepAliveMs?: number;
  /** How long a client may take to send its headers, and its whole request (tests shorten them). */
  timeouts?: Partial<typeof SLOW_CLIENT_TIMEOUTS>;
  /** Requests per minute per caller on /registry; undefined: no limit. */
  rateLimitPerMinute?: number;
  /** Open event streams per caller, and blocking queries waiting per caller (default 2000 each). */
  maxWatchers?: number;
  /** Events the store keeps for watchers to resume from, as /health reports it (default 10,000). */
  eventRetention?: number;
  /** The sweeper that turns time into stale and reaped events; off when undefined (tests drive it). */
  sweeper?: SweeperOptions;
  /** REGISTRY_HEALTH_CHECKS=on; the store must have been opened with health checks too. */
  healthChecks?: HealthCheckSettings & { share?: HealthShare };
}

/**
 * Builds the HTTP application around a store and a clock. Tests build it in-process with
 * a manual clock; `vm-registry serve` builds it with the real ones and listens.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { clock } = options;
  const tokens = options.tokens ?? new TokenRegistry(options.authToken);
  const timeouts = { ...SLOW_CLIENT_TIMEOUTS, ...options.timeouts };
  const metrics = new RegistryMetrics();
  const store = instrumentStore(options.store, metrics);
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: LIMITS.bodyBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Slow or stalled clients must not hold sockets and memory forever: headers within 15 s,
    // the whole request within 30 s. No idle timeout on the socket itself, which would cut
    // blocking queries (up to 10 min) and quiet event streams.
    http: { headersTimeout: timeouts.headersMs, connectionsCheckingInterval: Math.min(2_000, timeouts.headersMs) },
    requestTimeout: timeouts.requestMs,
    clientErrorHandler: clientErrorAnswerer(timeouts),
    frameworkErrors: answerFrameworkError,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Closes the connections idle when closing begins; see the preClose hook for the rest.
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
  refuseUnknownQueryParameters(app);
  // The hooks every request runs are synchronous (done callbacks rather than async functions,
  // which cost a promise each) and build a log line only when the level will write it.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', metrics.observeRequest);
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const level = status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
    if (level !== 'debug' || LOGS_DEBUG.has(request.log.level)) {
      request.log[level](
        { method: request.method, url: request.url, status, ms: Math.round(reply.elapsedTime * 10) / 10 },
        'request',
      );
    }
    done();
  });

  const feed = await ChangeFeed.start(store, options.logger);
  const sweeper = options.sweeper && startSweeper(store, options.sweeper, options.logger);
  const { share, ...checkSettings } = options.healthChecks ?? {};
  const checker =
    options.healthChecks &&
    new HealthChecker(store, feed, checkSettings as HealthCheckSettings, share ?? WHOLE_REGISTRY, metrics.healthChecks(), options.logger);
  checker?.start();
  metrics.follow(feed, () => store.census(), store.mirrorLag && (() => store.mirrorLag!()));
  // A connection whose request ends after closing began would otherwise stay open for its
  // keep-alive timeout (72 s), holding the close up all that time: close each as it goes idle.
  let closeIdle: NodeJS.Timeout | undefined;
  app.addHook('preClose', (done) => {
    closeIdle = setInterval(() => app.server.closeIdleConnections(), 100).unref();
    done();
  });
  app.addHook('onClose', async () => {
    clearInterval(closeIdle);
    sweeper?.stop();
    await checker?.stop();
    metrics.close();
    feed.close();
  });

  const metricsTokens = options.metricsPublic ? undefined : tokens;
  // Registered before the routes: it learns them as they are added.
  // /registry and /mcp share the tokens and the rate limit (the guarded scope below).
  const guarded = (url: string) => url.startsWith('/registry/') || url === '/mcp';
  await app.register(
    swagger,
    openapiOptions({
      needsToken: (url) => tokens.enabled && (guarded(url) || (url === '/metrics' && Boolean(metricsTokens))),
      rateLimited: (url) => options.rateLimitPerMinute !== undefined && guarded(url),
      storeCanFail: store.kind === 'postgres',
    }),
  );

  await app.register(healthRoutes, { store, clock, feed, startedAt: clock.now(), version: VERSION, eventRetention: options.eventRetention ?? 10_000 });
  // /registry and /mcp behind one set of tokens and one rate limit: a caller's budget is
  // shared between them (each registration of the limiter would count apart).
  await app.register(async (guardedScope) => {
    addAuthorization(guardedScope, tokens);
    // Its hooks go on each route, after the caller is identified and before a refusal is sent.
    if (options.rateLimitPerMinute !== undefined) await guardedScope.register(rateLimit, rateLimitOptions(options.rateLimitPerMinute));
    await guardedScope.register(
      async (registry) => {
        const maxWatchers = options.maxWatchers ?? 2_000;
        honourMinIndex(registry, feed);
        await registry.register(vmRoutes, {
          store,
          feed,
          maxWaiting: maxWatchers,
          healthChecks: options.healthChecks !== undefined,
          wakeups: metrics.blockingWakeups(),
        });
        await registry.register(eventRoutes, { store, feed, keepAliveMs: options.keepAliveMs ?? 15_000, maxWatchers });
        await registry.register(importRoutes, { store, clock });
        await registry.register(whoamiRoutes, { store });
      },
      { prefix: '/registry' },
    );
    await guardedScope.register(mcpRoutes, { feed, keepAliveMs: options.keepAliveMs ?? 15_000 });
  });
  await app.register(openapiRoutes, { prefix: '/registry' });
  await app.register(metricsRoutes, { metrics, tokens: metricsTokens });
  await app.register(uiRoutes);
  await app.register(docsRoutes);
  await app.register(rootRoutes, { version: VERSION });
  return app;
}
