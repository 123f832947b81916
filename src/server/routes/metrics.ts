import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { addAuthorization } from '../http/auth.js';
import type { RegistryMetrics } from '../ops/metrics.js';
import type { TokenRegistry } from '../http/tokens.js';

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
      // A scrape during an outage answers with what the process knows: that is when it matters most.
      config: { scope: 'read', answersDuringOutage: true },
      schema: {
        summary: 'Prometheus metrics',
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4.',
            content: {
              'text/plain': {
                schema: Type.String({
                  examples: [
                    '# HELP vm_registry_vms Registered VMs by role, status and staleness.\n# TYPE vm_registry_vms gauge\n' +
                      'vm_registry_vms{role="worker",status="running",stale="false"} 42\n',
                  ],
                }),
              },
            },
          },
        },
      },
    },
    async (_request, reply) => {
      const { contentType, text } = await metrics.render();
      return reply.type(contentType).send(text);
    },
  );
};
