import type { FastifyPluginAsync } from 'fastify';

/**
 * GET /registry/openapi.json: the document @fastify/swagger builds from every route's
 * schema. Public like /health, so that /docs can show it before anyone signs in: it
 * describes the API, never its data.
 */
export const openapiRoutes: FastifyPluginAsync = async (app) => {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};
