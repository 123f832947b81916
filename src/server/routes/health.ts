import { hostname } from 'node:os';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Clock } from '../../domain/clock.js';
import { HealthSchema } from '../../domain/schemas/health.js';
import type { RegistryStore } from '../../store/store.js';
import type { ChangeFeed } from '../feed/change-feed.js';

export interface HealthRoutesOptions {
  store: RegistryStore;
  clock: Clock;
  feed: ChangeFeed;
  startedAt: number;
  version: string;
  eventRetention: number;
}

/** This process among the replicas sharing a database. */
const REPLICA = `${hostname()}/${process.pid}`;

/** Never behind auth: load balancers and `curl /health` must always get an answer. */
export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, options) => {
  const { store, clock, feed, startedAt, version, eventRetention } = options;
  app.get(
    '/health',
    { schema: { summary: 'Liveness and store health', response: { 200: HealthSchema, 503: HealthSchema } } },
    async (_request, reply) => {
      const base = {
        uptime: Math.max(0, (clock.now() - startedAt) / 1000),
        staleAfterMs: store.staleAfterMs,
        revision: feed.revision,
        ...feed.counts,
        version,
        replica: REPLICA,
        startedAt: new Date(startedAt).toISOString(),
        eventRetention,
        ...(store.mirrorLag && { mirror: store.mirrorLag() }),
      };
      try {
        const vms = await store.count();
        return { status: 'ok' as const, ...base, store: { kind: store.kind, ok: true }, vms };
      } catch (error) {
        reply.code(503);
        return { status: 'degraded' as const, ...base, store: { kind: store.kind, ok: false, error: (error as Error).message } };
      }
    },
  );
};
