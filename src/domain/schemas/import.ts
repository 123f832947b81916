import { Type, type Static } from '@sinclair/typebox';
import { RegistrationSchema } from './vm.js';

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
export type ImportedVm = Static<typeof ImportedVmSchema>;

export const ImportSummarySchema = Type.Object({
  imported: Type.Integer(),
  created: Type.Integer(),
  replaced: Type.Integer(),
  revision: Type.Integer({ description: 'Registry revision after the import.' }),
});
export type ImportSummary = Static<typeof ImportSummarySchema>;
