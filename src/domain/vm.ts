import { InvalidInputError } from './errors.js';
import type { CheckedService } from './health.js';
import { LIMITS, type Metadata, type Registration, type Role, type Status, type VmUpdate } from './schemas.js';

/** A registration after validation and normalisation: what the store writes. */
export interface VmFields {
  id: string;
  name: string;
  role: Role;
  status: Status;
  address: string;
  registeredBy: string;
  services?: CheckedService[];
  metadata?: Metadata;
  /** Name of the token that registered the VM; never shown in API answers. */
  owner?: string;
}

/** A stored entry: the API's fields plus the revision of its last change (its ETag). */
export interface VmRecord extends VmFields {
  registeredAt: string;
  lastSeen: string;
  revision: number;
}

export function isStale(vm: Pick<VmRecord, 'status' | 'lastSeen'>, now: number, staleAfterMs: number): boolean {
  return vm.status === 'running' && now - Date.parse(vm.lastSeen) > staleAfterMs;
}

/**
 * Checks what JSON Schema cannot express: metadata's encoded size and nesting depth.
 * Depth is checked first and without recursion past the limit, so a deeply nested
 * body cannot exhaust the stack while being measured.
 */
export function checkMetadata(metadata: Metadata | undefined): void {
  if (metadata === undefined) return;
  let level: unknown[] = [metadata];
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > LIMITS.metadataDepth) {
      throw new InvalidInputError(`metadata is nested deeper than ${LIMITS.metadataDepth} levels`);
    }
    const next: unknown[] = [];
    for (const value of level) {
      if (value !== null && typeof value === 'object') next.push(...Object.values(value));
    }
    level = next;
  }
  const bytes = Buffer.byteLength(JSON.stringify(metadata));
  if (bytes > LIMITS.metadataBytes) {
    throw new InvalidInputError(`metadata is ${bytes} bytes encoded; the limit is ${LIMITS.metadataBytes}`);
  }
}

/** Checks metadata and fills in defaults; the schema has already checked the (trimmed) body. */
export function normaliseRegistration(body: Registration): VmFields {
  checkMetadata(body.metadata);
  return {
    id: body.id,
    name: body.name,
    role: body.role,
    status: body.status ?? 'running',
    address: body.address,
    registeredBy: body.registeredBy,
    ...(body.services !== undefined && { services: body.services }),
    ...(body.metadata !== undefined && { metadata: body.metadata }),
  };
}

/** Checks what the schema cannot: metadata's size and depth. */
export function normaliseUpdate(body: VmUpdate): VmUpdate {
  checkMetadata(body.metadata);
  return body;
}
