import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';

const NoQuerySchema = Type.Object({}, { additionalProperties: false });

/**
 * A query parameter a route does not know is refused rather than ignored, so that a typo such
 * as ?roles=infra never silently widens an answer: routes that take none get a schema saying
 * so. The pages (/ui, /docs), hidden from the API document, keep accepting whatever a browser adds.
 */
export function refuseUnknownQueryParameters(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (route.schema?.hide || route.schema?.querystring) return;
    route.schema = { ...route.schema, querystring: NoQuerySchema };
  });
}
