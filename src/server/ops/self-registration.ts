import type { FastifyBaseLogger } from 'fastify';
import { NotFoundError } from '../../domain/errors.js';
import type { RegistryStore } from '../../store/store.js';
import type { SelfRegistrationConfig } from '../config.js';

export interface SelfRegistration {
  stop(): void;
}

/**
 * The seed's "self-registration on startup" pattern, done by the server itself: an
 * idempotent PUT (so a restart is no 409), then heartbeats well inside the stale window.
 * If the entry disappears (deleted, reaped) the next beat puts it back.
 */
export async function startSelfRegistration(
  store: RegistryStore,
  self: SelfRegistrationConfig,
  port: number,
  log: FastifyBaseLogger,
): Promise<SelfRegistration> {
  const entry = {
    id: self.id,
    name: self.name,
    role: 'infra' as const,
    status: 'running' as const,
    address: self.address,
    registeredBy: 'self',
    services: [{ name: 'registry', port, healthPath: '/health' }],
  };
  await store.put(entry);
  log.info({ id: self.id, address: self.address }, 'registered this server as role infra');

  const beat = async () => {
    try {
      await store.heartbeat(self.id);
    } catch (error) {
      if (!(error instanceof NotFoundError)) return log.warn({ err: error }, 'self heartbeat failed');
      log.warn({ id: self.id }, 'own registry entry was removed; registering again');
      await store.put(entry).catch((err: unknown) => log.warn({ err }, 'self re-registration failed'));
    }
  };
  const interval = Math.max(1000, Math.min(60_000, Math.floor(store.staleAfterMs / 3)));
  const timer = setInterval(beat, interval);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
