import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { Clock } from '../../domain/clock.js';
import { RegistrationSchema } from '../../domain/schemas.js';
import { normaliseRegistration } from '../../domain/vm.js';
import type { ImportedVm, RegistryStore } from '../../store/store.js';
import { BadRequestError } from '../http/errors.js';

/** An import carries whole registries, so it gets its own, larger, limits. */
export const IMPORT_LIMITS = { vms: 10_000, bodyBytes: 16 * 1024 * 1024, futureSkewMs: 60_000 } as const;

/** A full entry as agent-services' data/registry.json holds it: a registration plus its timestamps. */
export const ImportedVmSchema = Type.Object(
  {
    ...RegistrationSchema.properties,
    registeredAt: Type.String({ format: 'date-time' }),
    lastSeen: Type.String({ format: 'date-time' }),
    // What a listing shows, so that one can be imported as it is; staleness follows from lastSeen.
    stale: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const ImportBodySchema = Type.Object(
  { vms: Type.Array(ImportedVmSchema, { maxItems: IMPORT_LIMITS.vms }) },
  { additionalProperties: false },
);
export type ImportBody = Static<typeof ImportBodySchema>;

export const ImportSummarySchema = Type.Object({
  imported: Type.Integer(),
  created: Type.Integer(),
  replaced: Type.Integer(),
  revision: Type.Integer({ description: 'Registry revision after the import.' }),
});
export type ImportSummary = Static<typeof ImportSummarySchema>;

export interface ImportRoutesOptions {
  store: RegistryStore;
  clock: Clock;
}

/**
 * POST /registry/import: moves an existing swarm over in one request. Unlike PUT it keeps
 * each entry's registeredAt and lastSeen, so staleness carries over unchanged. All or
 * nothing: one invalid entry rejects the whole import.
 */
export const importRoutes: FastifyPluginAsyncTypebox<ImportRoutesOptions> = async (app, { store, clock }) => {
  app.post(
    '/import',
    {
      config: { scope: 'admin' },
      bodyLimit: IMPORT_LIMITS.bodyBytes,
      schema: {
        summary: 'Import full entries, keeping registeredAt and lastSeen',
        body: ImportBodySchema,
        response: { 200: ImportSummarySchema },
      },
    },
    async (request) => {
      const latest = clock.now() + IMPORT_LIMITS.futureSkewMs;
      const seen = new Set<string>();
      const vms: ImportedVm[] = request.body.vms.map(({ registeredAt, lastSeen, stale: _derived, ...registration }, index) => {
        if (seen.has(registration.id)) throw new BadRequestError(`vms[${index}].id "${registration.id}" appears more than once`);
        seen.add(registration.id);
        const times = { registeredAt: Date.parse(registeredAt), lastSeen: Date.parse(lastSeen) };
        for (const [field, ms] of Object.entries(times)) {
          // A time ahead of the clock would keep a dead VM looking alive.
          if (ms > latest) throw new BadRequestError(`vms[${index}].${field} is in the future`);
        }
        return { ...normaliseRegistration(registration), ...times };
      });
      const result = await store.import(vms);
      return { imported: vms.length, ...result };
    },
  );
};
