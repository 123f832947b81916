import { InvalidInputError } from './errors.js';
import type { CheckedService } from './service-health.js';
import { LIMITS, type Metadata, type Registration, type Role, type Service, type Status, type VmUpdate } from './schemas/vm.js';

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

/** An entry as a store answers it: the API's fields plus the revision of its last change (its ETag). */
export interface VmRecord extends VmFields {
  registeredAt: string;
  lastSeen: string;
  /** Judged by the store when it answered (see isStale); never stored. */
  stale: boolean;
  revision: number;
}

/** The rule: running, and not seen for longer than the threshold at `now` (ms; lastSeen as ISO text or ms). */
export function isStale(vm: { status: Status; lastSeen: string | number }, now: number, staleAfterMs: number): boolean {
  const lastSeen = typeof vm.lastSeen === 'number' ? vm.lastSeen : Date.parse(vm.lastSeen);
  return vm.status === 'running' && now - lastSeen > staleAfterMs;
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

// Schemes are case-insensitive; one spelling lets consumers compare them as they are.
const normaliseServices = (services: Service[]) =>
  services.map((s) => (s.protocol === undefined ? s : { ...s, protocol: s.protocol.toLowerCase() }));

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
    ...(body.services !== undefined && { services: normaliseServices(body.services) }),
    ...(body.metadata !== undefined && { metadata: body.metadata }),
  };
}

/** Checks what the schema cannot (metadata's size and depth) and spells protocols one way. */
export function normaliseUpdate(body: VmUpdate): VmUpdate {
  checkMetadata(body.metadata);
  return body.services === undefined ? body : { ...body, services: normaliseServices(body.services) };
}
