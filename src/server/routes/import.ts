import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Clock } from '../../domain/clock.js';
import { IMPORT_LIMITS, ImportBodySchema, ImportSummarySchema } from '../../domain/schemas/import.js';
import { normaliseRegistration } from '../../domain/vm.js';
import type { ImportedVm, RegistryStore } from '../../store/store.js';
import { BadRequestError } from '../http/errors.js';

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
