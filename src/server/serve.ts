import pino from 'pino';
import { systemClock } from '../domain/clock.js';
import { formatDuration } from '../domain/duration.js';
import { redactDatabaseUrl } from '../store/postgres/database-url.js';
import { PostgresHealthShares } from '../store/postgres/health-shares.js';
import { openPostgresStore } from '../store/postgres/postgres-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { RegistryStore } from '../store/store.js';
import { buildApp } from './app.js';
import { refuseOpenExposure, type ServerConfig } from './config.js';
import { startSelfRegistration } from './ops/self-registration.js';
import { readTokensFile, TokenRegistry } from './http/tokens.js';
import { VERSION } from '../domain/version.js';

/**
 * Connections waiting to be accepted. Node's default, 511, is too shallow for a swarm: when
 * thousands of agents reconnect at once (a restart, a network blip, a slow moment that makes
 * clients open more sockets), SYNs past it are dropped and each agent waits out TCP's
 * retransmission, 1, 3, 7, 15 s…, while the server sits idle. The kernel caps it at
 * net.core.somaxconn (4096 on current Linux, etcd's Go listener gets the same).
 */
const LISTEN_BACKLOG = 4096;

/** DATABASE_URL selects PostgreSQL, shared by every replica; otherwise the embedded SQLite file. */
async function openStore(config: ServerConfig, log: pino.Logger): Promise<RegistryStore> {
  const common = { staleAfterMs: config.staleAfterMs, eventRetention: config.eventRetention, healthChecks: config.healthChecks !== undefined };
  if (config.databaseUrl !== undefined) {
    return openPostgresStore({ ...common, url: config.databaseUrl, poolMax: config.pgPoolMax, log });
  }
  return openSqliteStore({ ...common, file: config.db, clock: systemClock });
}

/**
 * Runs the registry until SIGTERM or SIGINT: opens the store (refusing to start over a
 * database it cannot read), listens, and on a signal stops taking connections, lets
 * in-flight requests finish and closes the database cleanly.
 */
export async function serve(config: ServerConfig): Promise<void> {
  const log = pino({
    level: config.logLevel,
    base: { service: 'vm-registry' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  });
  const tokens = new TokenRegistry(config.authToken, config.tokensFile ? readTokensFile(config.tokensFile) : []);
  refuseOpenExposure(config, tokens.enabled);
  const store = await openStore(config, log);
  const app = await buildApp({
    store,
    clock: systemClock,
    tokens,
    logger: log,
    sweeper: { intervalMs: 500, reapAfterMs: config.reapAfterMs, reapGraceMs: config.staleAfterMs },
    rateLimitPerMinute: config.rateLimitPerMinute,
    metricsPublic: config.metricsPublic,
    maxWatchers: config.maxWatchers,
    eventRetention: config.eventRetention,
    // Replicas on one database split the checks between them; alone, a server checks every VM.
    healthChecks: config.healthChecks && {
      ...config.healthChecks,
      ...(config.databaseUrl !== undefined && { share: new PostgresHealthShares(config.databaseUrl, log) }),
    },
  });

  if (config.hostReason) log.warn(config.hostReason);
  if (config.authOff) {
    log.warn(
      { host: config.host },
      `REGISTRY_AUTH=off: authentication is switched off on ${config.host}; anyone who can reach this port can read, register, change and delete every VM`,
    );
  } else if (!tokens.enabled) {
    log.warn('authentication is off: anyone who can reach this port can change the registry');
  }
  if (config.tokensFile) {
    // Rotating tokens must not drop the connections of every watcher and blocking query.
    process.on('SIGHUP', () => {
      try {
        tokens.replace(readTokensFile(config.tokensFile!));
        log.info({ tokens: tokens.names }, 'reloaded the tokens file');
      } catch (error) {
        log.error({ err: error }, 'kept the previous tokens: the tokens file could not be reloaded');
      }
    });
  }

  await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // Before the line that says it is up: whoever waits for that line finds the server registered.
  const self = config.self ? await startSelfRegistration(store, config.self, port, log) : undefined;
  log.info(
    {
      port,
      host: config.host,
      db: config.databaseUrl === undefined ? config.db : redactDatabaseUrl(config.databaseUrl),
      staleAfter: formatDuration(config.staleAfterMs),
      reapAfter: config.reapAfterMs === undefined ? 'never' : formatDuration(config.reapAfterMs),
      version: VERSION,
    },
    'vm-registry listening',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'draining in-flight requests and closing');
    self?.stop();
    await app.close();
    await store.close();
    log.info('closed cleanly');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
