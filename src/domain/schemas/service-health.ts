import { Type, type Static } from '@sinclair/typebox';

/**
 * Active health checks: what the registry last learned by probing a service's healthPath.
 * Only a change of status is stored, so `checkedAt` and `output` describe the check that set
 * the status shown, not necessarily the latest one.
 */
export const HEALTH_STATUSES = ['passing', 'critical', 'unknown'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export const HealthStatusSchema = Type.Unsafe<HealthStatus>({
  type: 'string',
  enum: [...HEALTH_STATUSES],
  description: 'passing: the last check answered 2xx; critical: the last checks failed; unknown: not checked yet.',
});

export const ServiceHealthSchema = Type.Object(
  {
    status: HealthStatusSchema,
    checkedAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the check that set this status ran.' })),
    output: Type.Optional(Type.String({ description: 'What that check saw: the HTTP status, or the error.' })),
  },
  { description: 'Present on services with a healthPath while health checks are on (REGISTRY_HEALTH_CHECKS=on).' },
);
export type ServiceHealth = Static<typeof ServiceHealthSchema>;
