import { Type, type Static } from '@sinclair/typebox';
import { HEALTH_STATUSES } from './service-health.js';
import { LIMITS, RoleSchema, StatusSchema, VmIdSchema } from './vm.js';

/**
 * A registry revision as text: digits only, and at most 15 of them, so that it stays an
 * exact JavaScript number. Query parameters, If-Match and Last-Event-ID all read it this way.
 */
export const REVISION_DIGITS = '\\d{1,15}';
export const REVISION_PATTERN = `^${REVISION_DIGITS}$`;
export const RevisionSchema = Type.String({ pattern: REVISION_PATTERN, description: 'A registry revision.' });

const revisionText = new RegExp(REVISION_PATTERN);
/** Whether a header names a revision, as the pattern above says (Last-Event-ID, for one). */
export const isRevisionText = (text: string) => revisionText.test(text);

/** The header name, as Fastify holds request headers: lower case. */
export const MIN_INDEX_HEADER = 'x-registry-min-index';
/** The headers of a read: X-Registry-Min-Index makes it wait for a revision (server/http/min-index.ts). */
export const ReadHeadersSchema = Type.Object({
  [MIN_INDEX_HEADER]: Type.Optional(
    Type.String({
      pattern: REVISION_PATTERN,
      description:
        'Answer from a registry at this revision or later, waiting up to 10 s (then 503): on PostgreSQL, the revision (ETag) of a write made on another replica.',
    }),
  ),
});

export const VmIdParamsSchema = Type.Object({ id: VmIdSchema });
export const RoleParamsSchema = Type.Object({ role: RoleSchema });

export const ListQuerySchema = Type.Object({
  role: Type.Optional(RoleSchema),
  status: Type.Optional(StatusSchema),
  stale: Type.Optional(
    Type.Unsafe<'true' | 'false'>({
      type: 'string',
      enum: ['true', 'false'],
      description: 'true: only stale VMs; false: none. Default: status=running implies false.',
    }),
  ),
  health: Type.Optional(
    Type.Unsafe<(typeof HEALTH_STATUSES)[number]>({
      type: 'string',
      enum: [...HEALTH_STATUSES],
      description: 'Only VMs in this health state: the worst of their services (or of ?service=).',
    }),
  ),
  service: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: LIMITS.serviceNameLength,
      description: 'Only VMs offering this service; with health, its state alone decides.',
    }),
  ),
});
export type ListQuery = Static<typeof ListQuerySchema>;

/** The filters of GET /registry/discover/:role. */
export const DiscoverFilterSchema = Type.Object({
  health: Type.Optional(
    Type.Unsafe<'any' | (typeof HEALTH_STATUSES)[number]>({
      type: 'string',
      enum: ['any', ...HEALTH_STATUSES],
      description: 'With health checks on, VMs with a critical service are left out; any: keep them.',
    }),
  ),
  service: ListQuerySchema.properties.service,
});
export type DiscoverQuery = Static<typeof DiscoverFilterSchema>;

/** `?index=N&wait=30s`: the Consul-style blocking query parameters of list and discover. */
const blockingQuery = {
  index: Type.Optional(
    Type.String({
      pattern: REVISION_PATTERN,
      description: 'An earlier answer\'s X-Registry-Index: answer once a change after it concerns this answer (a VM entering, leaving or changing in it).',
    }),
  ),
  wait: Type.Optional(Type.String({ description: 'Longest wait, such as 30s or 5m (default 60s, at most 10m).' })),
};

/** GET /registry/vms: the filters, and a blocking query. */
export const ListWithIndexSchema = Type.Object({ ...ListQuerySchema.properties, ...blockingQuery }, { additionalProperties: false });
/** GET /registry/discover/:role: the filters, and a blocking query. */
export const DiscoverQuerySchema = Type.Object({ ...DiscoverFilterSchema.properties, ...blockingQuery }, { additionalProperties: false });
