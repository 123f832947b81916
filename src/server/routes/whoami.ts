import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorSchema } from '../../domain/schemas/error.js';
import { VmIdSchema } from '../../domain/schemas/vm.js';
import { NotFoundError } from '../../domain/errors.js';
import type { RegistryStore } from '../../store/store.js';
import { ownerRestriction } from '../http/auth.js';
import { SCOPES, type Scope } from '../http/tokens.js';

export const WhoAmISchema = Type.Object({
  name: Type.Optional(Type.String({ description: 'The name of the token presented; absent on an open registry.' })),
  scopes: Type.Array(Type.Unsafe<Scope>({ type: 'string', enum: [...SCOPES] }), {
    description: 'What the caller may do: read (list, get, watch), write (register; change, heartbeat and deregister its own VMs), admin (everything).',
  }),
  mayChange: Type.Optional(
    Type.Boolean({ description: 'With ?vm=ID: whether this token may change, heartbeat and deregister that VM (a write token: only the VMs it registered).' }),
  ),
});

const WhoAmIQuerySchema = Type.Object(
  { vm: Type.Optional({ ...VmIdSchema, description: 'Also answer whether this token may change that VM.' }) },
  { additionalProperties: false },
);

export interface WhoAmIRoutesOptions {
  store: RegistryStore;
}

/**
 * GET /registry/whoami: lets a client such as the dashboard learn what its token may do
 * before offering actions it would be refused. Any valid token may ask.
 */
export const whoamiRoutes: FastifyPluginAsyncTypebox<WhoAmIRoutesOptions> = async (app, { store }) => {
  app.get(
    '/whoami',
    {
      config: { scope: 'any', answersDuringOutage: true },
      schema: {
        summary: "The caller's token name and scopes, and whether it may change a given VM",
        querystring: WhoAmIQuerySchema,
        response: { 200: WhoAmISchema, 404: { ...ErrorSchema, description: 'No VM has the id given in ?vm=.' } },
      },
    },
    async (request) => {
      const principal = request.principal;
      const caller = principal ? { name: principal.name, scopes: [...principal.scopes] } : { scopes: [...SCOPES] };
      const id = request.query.vm;
      if (id === undefined) return caller;
      const vm = await store.get(id);
      if (!vm) throw new NotFoundError(id);
      const owner = ownerRestriction(request);
      const mayWrite = !principal || principal.scopes.has('write') || principal.scopes.has('admin');
      return { ...caller, mayChange: mayWrite && (owner === undefined || vm.owner === owner) };
    },
  );
};
