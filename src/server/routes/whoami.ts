import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SCOPES, type Scope } from '../http/tokens.js';

export const WhoAmISchema = Type.Object({
  name: Type.Optional(Type.String({ description: 'The name of the token presented; absent on an open registry.' })),
  scopes: Type.Array(Type.Unsafe<Scope>({ type: 'string', enum: [...SCOPES] }), {
    description: 'What the caller may do: read (list, get, watch), write (register; change, heartbeat and deregister its own VMs), admin (everything).',
  }),
});

/**
 * GET /registry/whoami: lets a client such as the dashboard learn what its token may do
 * before offering actions it would be refused. Any valid token may ask.
 */
export const whoamiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/whoami',
    {
      config: { scope: 'any', answersDuringOutage: true },
      schema: { summary: "The caller's token name and scopes", response: { 200: WhoAmISchema } },
    },
    async (request) =>
      request.principal ? { name: request.principal.name, scopes: [...request.principal.scopes] } : { scopes: [...SCOPES] },
  );
};
