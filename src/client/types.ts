import type { Static } from '@sinclair/typebox';
import type { DeletedSchema, HeartbeatSchema, VmListSchema } from '../domain/schemas/vm.js';

/** The client speaks the server's own types: every one is derived from the TypeBox schemas. */
export type { Metadata, Registration, Replacement, Role, Service, Status, Vm, VmUpdate } from '../domain/schemas/vm.js';
export type { DiscoverQuery, ListQuery } from '../domain/schemas/query.js';
export type { HealthStatus, ServiceHealth } from '../domain/schemas/service-health.js';
/** A full entry, timestamps included, as agent-services' data/registry.json and `export` hold it. */
export type { ImportedVm, ImportSummary } from '../domain/schemas/import.js';
/** One change from GET /registry/events (for a removal, `vm` is its last state), or a reset: list again. */
export type { EventType as RegistryEventType, RegistryEvent, RegistryReset } from '../domain/schemas/events.js';

export type VmList = Static<typeof VmListSchema>;
export type HeartbeatResult = Static<typeof HeartbeatSchema>;
export type Deleted = Static<typeof DeletedSchema>;
