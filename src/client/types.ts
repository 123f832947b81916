import type { Static } from '@sinclair/typebox';
import type { DeletedSchema, HeartbeatSchema, VmListSchema } from '../domain/schemas.js';
import type { ImportedVmSchema, ImportSummarySchema } from '../server/routes/import.js';

/** The client speaks the server's own types: every one is derived from the TypeBox schemas. */
export type {
  DiscoverQuery,
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
export type { HealthStatus, ServiceHealth } from '../domain/health.js';

export type VmList = Static<typeof VmListSchema>;
export type HeartbeatResult = Static<typeof HeartbeatSchema>;
export type Deleted = Static<typeof DeletedSchema>;
/** A full entry, timestamps included, as agent-services' data/registry.json and `export` hold it. */
export type ImportedVm = Static<typeof ImportedVmSchema>;
export type ImportSummary = Static<typeof ImportSummarySchema>;

/**
 * Sent by GET /registry/events when the server lost its place in the event log: changes were
 * missed, so list again; the stream goes on after `revision`.
 */
export type { ResetData as RegistryReset } from '../server/feed/change-feed.js';

/** One change from GET /registry/events; for a removal, `vm` is its last state. */
export type { EventType as RegistryEventType, RegistryEvent } from '../store/store.js';
