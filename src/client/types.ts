import type { Static } from '@sinclair/typebox';
import type { DeletedSchema, HeartbeatSchema, Vm, VmListSchema } from '../domain/schemas.js';

/** The client speaks the server's own types: every one is derived from the TypeBox schemas. */
export type {
  ListQuery,
  Metadata,
  Registration,
  Replacement,
  Role,
  Service,
  Status,
  Vm,
  VmUpdate,
} from '../domain/schemas.js';

export type VmList = Static<typeof VmListSchema>;
export type HeartbeatResult = Static<typeof HeartbeatSchema>;
export type Deleted = Static<typeof DeletedSchema>;

export const EVENT_TYPES = ['registered', 'updated', 'deregistered', 'stale', 'recovered', 'reaped'] as const;
export type RegistryEventType = (typeof EVENT_TYPES)[number];

/** One change from GET /registry/events; for a removal, `vm` is its last state. */
export interface RegistryEvent {
  type: RegistryEventType;
  revision: number;
  at: string;
  vm: Vm;
}
