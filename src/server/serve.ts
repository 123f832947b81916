import pino from 'pino';
import { systemClock } from '../domain/clock.js';
import { formatDuration } from '../domain/duration.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { buildApp } from './app.js';
import type { ServerConfig } from './config.js';
import { startSelfRegistration } from './self-registration.js';
import { VERSION } from './version.js';

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
  const store = openSqliteStore({
    file: config.db,
    clock: systemClock,
    staleAfterMs: config.staleAfterMs,
    eventRetention: config.eventRetention,
  });
  const app = await buildApp({
    store,
    clock: systemClock,
    authToken: config.authToken,
    logger: log,
    sweeper: { intervalMs: 500, reapAfterMs: config.reapAfterMs },
  });

  if (config.hostReason) log.warn(config.hostReason);
  if (!config.authToken) log.warn('authentication is off: anyone who can reach this port can change the registry');

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info(
    {
      port,
      host: config.host,
      db: config.db,
      staleAfter: formatDuration(config.staleAfterMs),
      reapAfter: config.reapAfterMs === undefined ? 'never' : formatDuration(config.reapAfterMs),
      version: VERSION,
    },
    'vm-registry listening',
  );
  const self = config.self ? await startSelfRegistration(store, config.self, port, log) : undefined;

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
