import type { SwaggerOptions } from '@fastify/swagger';
import { VERSION } from './version.js';

/**
 * How @fastify/swagger turns the routes' own TypeBox schemas into an OpenAPI 3.1 document
 * (3.1 because its schemas are JSON Schema, as TypeBox's are). `needsToken` tells which
 * URLs sit behind the bearer token in this configuration.
 */
export function openapiOptions(needsToken: (url: string) => boolean): SwaggerOptions {
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
    transform: ({ schema, url }) => ({
      schema: needsToken(url) ? { ...schema, security: [{ bearer: [] }] } : schema,
      url,
    }),
  };
}
