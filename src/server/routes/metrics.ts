import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorSchema } from '../../domain/schemas.js';
import { addAuthorization } from '../auth.js';
import type { RegistryMetrics } from '../metrics.js';
import type { TokenRegistry } from '../tokens.js';

export interface MetricsRoutesOptions {
  metrics: RegistryMetrics;
  /** Scrapes need a read token from these; undefined when REGISTRY_METRICS_PUBLIC=1. */
  tokens?: TokenRegistry;
}

/** GET /metrics in Prometheus' text format. */
export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (app, { metrics, tokens }) => {
  if (tokens) addAuthorization(app, tokens);
  app.get(
    '/metrics',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Prometheus metrics',
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4.',
            content: { 'text/plain': { schema: Type.String() } },
          },
          401: ErrorSchema,
        },
      },
    },
    async (_request, reply) => {
      const { contentType, text } = await metrics.render();
      return reply.type(contentType).send(text);
    },
  );
};
