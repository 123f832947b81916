import type { SwaggerOptions } from '@fastify/swagger';
import type { RouteOptions } from 'fastify';
import { ErrorSchema, LIMITS } from '../../domain/schemas.js';
import { VERSION } from '../version.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on a route that still answers when PostgreSQL is down, and so never answers 503 for it. */
    answersDuringOutage?: true;
  }
}

/** What this configuration does to each URL, which decides the answers a route can give beyond its own. */
export interface ApiFacts {
  /** Behind the bearer token: 401, and 403 unless any valid token will do. */
  needsToken(url: string): boolean;
  /** Counted against the per-caller rate limit: 429. */
  rateLimited(url: string): boolean;
  /** The store can be unreachable (PostgreSQL): 503 wherever it is read. */
  storeCanFail: boolean;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const REQUEST_PARTS = ['body', 'querystring', 'params', 'headers'] as const;

const failure = (description: string) => ({ ...ErrorSchema, description });

type RouteSchema = NonNullable<RouteOptions['schema']> & { response?: Record<string, unknown>; [part: string]: unknown };
const declares = (schema: unknown, property: string) =>
  Boolean((schema as { properties?: Record<string, unknown> } | undefined)?.properties?.[property]);

/**
 * The error answers a route can give because of how it is mounted and what it accepts, so
 * that no route lists them by hand and none lists one it cannot give. A route's own schema
 * adds only what its handler alone decides (such as 409 for POST /registry/vms, or 410 for
 * events), and wins where both speak.
 */
export function derivedResponses(route: Pick<RouteOptions, 'method' | 'url' | 'bodyLimit' | 'config'>, schema: RouteSchema, facts: ApiFacts) {
  const method = [route.method].flat()[0].toUpperCase();
  const responses: Record<string, unknown> = {};
  if (REQUEST_PARTS.some((part) => schema[part])) responses[400] = failure('Invalid input: the message names the field or rule at fault.');
  if (facts.needsToken(route.url)) {
    responses[401] = failure('No bearer token, or one the registry does not know.');
    if (route.config?.scope !== 'any') responses[403] = failure('The token lacks the scope this request needs, or does not own the VM.');
  }
  // PUT creates what it does not find.
  if (declares(schema.params, 'id') && method !== 'PUT') responses[404] = failure('No VM with that id is registered.');
  if (declares(schema.headers, 'if-match')) responses[412] = failure('If-Match names another revision than the VM is at.');
  if (BODY_METHODS.has(method)) {
    responses[413] = failure(`The request body is larger than ${route.bodyLimit ?? LIMITS.bodyBytes} bytes.`);
  }
  if (facts.rateLimited(route.url)) responses[429] = failure('The caller spent its requests for this minute; see Retry-After.');
  if (facts.storeCanFail && !route.config?.answersDuringOutage) responses[503] = failure('The PostgreSQL database is unavailable; retry shortly.');
  return { ...responses, ...schema.response };
}

/**
 * How @fastify/swagger turns the routes' own TypeBox schemas into an OpenAPI 3.1 document
 * (3.1 because its schemas are JSON Schema, as TypeBox's are), with each route's error
 * answers derived from the facts of this configuration.
 */
export function openapiOptions(facts: ApiFacts): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'vm-registry',
        version: VERSION,
        description: 'Service discovery for persistent VMs in AI agent swarms: register, heartbeat, discover by role, watch changes.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'VERS_AUTH_TOKEN' } },
      },
    },
    transform: ({ schema, url, route }) => {
      const described = { ...schema, response: derivedResponses(route, schema as RouteSchema, facts) };
      return { schema: facts.needsToken(url) ? { ...described, security: [{ bearer: [] }] } : described, url };
    },
  };
}
