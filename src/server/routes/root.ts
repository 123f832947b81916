import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const LINKS = {
  dashboard: '/ui',
  docs: '/docs',
  openapi: '/registry/openapi.json',
  health: '/health',
  metrics: '/metrics',
  vms: '/registry/vms',
  events: '/registry/events',
};

export const IndexSchema = Type.Object(
  {
    name: Type.Literal('vm-registry'),
    version: Type.String(),
    links: Type.Object(Object.fromEntries(Object.keys(LINKS).map((key) => [key, Type.String()])), {
      description: 'Where to go next, as paths on this server.',
    }),
  },
  { examples: [{ name: 'vm-registry', version: '0.1.0', links: LINKS }] },
);

/**
 * GET /: a person opening the server in a browser lands on the dashboard; curl and scripts
 * (which do not ask for HTML) get a short index of where things are. Public like /health:
 * it names paths, never data.
 */
export const rootRoutes: FastifyPluginAsyncTypebox<{ version: string }> = async (app, { version }) => {
  app.get(
    '/',
    {
      // It reads no data, so an unreachable database changes nothing here.
      config: { answersDuringOutage: true },
      schema: {
        summary: 'An index of links; a browser is redirected to the dashboard',
        response: { 200: IndexSchema, 302: Type.Null({ description: 'To /ui, when the request accepts text/html.' }) },
      },
    },
    async (request, reply) => {
      reply.header('vary', 'accept');
      if (request.headers.accept?.includes('text/html')) return reply.redirect('/ui', 302);
      return { name: 'vm-registry' as const, version, links: LINKS };
    },
  );
};
