import type { Service } from './schemas.js';

/**
 * A VM's JSON exactly as the API answers it (fast-json-stringify over VmSchema: required
 * fields in schema order, then the optional services and metadata, services' fields in their
 * schema order whatever order the client sent), built once per change so that reads send
 * stored text instead of serializing objects again. The text splits around lastSeen's value,
 * so a heartbeat only swaps the timestamp between the head and the tail.
 */
const str = JSON.stringify;

export function servicesJson(services: readonly Service[]): string {
  return `[${services
    .map((s) => `{"name":${str(s.name)},"port":${s.port}${s.healthPath === undefined ? '' : `,"healthPath":${str(s.healthPath)}`}}`)
    .join(',')}]`;
}

export interface VmJsonParts {
  id: string;
  name: string;
  role: string;
  status: string;
  address: string;
  registeredBy: string;
  registeredAt: string;
  /** servicesJson() of the services, or null when the VM has none. */
  services: string | null;
  /** JSON.stringify of the metadata object (what fast-json-stringify emits for it), or null. */
  metadata: string | null;
}

/** A VM's JSON around lastSeen's value: the whole is `head + lastSeen + tail`. */
export interface VmJsonText {
  head: string;
  tail: string;
}

export function vmJsonParts(vm: VmJsonParts): VmJsonText {
  return {
    head:
      `{"id":${str(vm.id)},"name":${str(vm.name)},"role":${str(vm.role)},"status":${str(vm.status)},"address":${str(vm.address)}` +
      `,"registeredBy":${str(vm.registeredBy)},"registeredAt":${str(vm.registeredAt)},"lastSeen":"`,
    tail: '"' + (vm.services === null ? '' : `,"services":${vm.services}`) + (vm.metadata === null ? '' : `,"metadata":${vm.metadata}`) + '}',
  };
}

let lastFormatted = { ms: NaN, iso: '' };

/**
 * Timestamps in the API: ms since the epoch as ISO 8601 in UTC. Remembers the last one: tens
 * of heartbeats a millisecond all answer the same lastSeen.
 */
export function isoTimestamp(ms: number): string {
  if (ms !== lastFormatted.ms) lastFormatted = { ms, iso: new Date(ms).toISOString() };
  return lastFormatted.iso;
}

/** An isoTimestamp for years 0 to 9999, as every lastSeen is: always 24 ASCII characters. */
export const ISO_TIMESTAMP_BYTES = 24;

/**
 * A VM's JSON as the UTF-8 bytes a response sends, and where lastSeen's value starts in them,
 * so that a newer lastSeen rewrites those 24 bytes in place rather than building the text
 * again, and a listing is one copy of each entry's bytes.
 */
export interface VmJsonBytes {
  bytes: Buffer;
  lastSeenAt: number;
  /** The lastSeen the bytes show, in ms. */
  lastSeen: number;
}

export function vmJsonBytes({ head, tail }: VmJsonText, lastSeenMs: number): VmJsonBytes {
  const lastSeen = isoTimestamp(lastSeenMs);
  const lastSeenAt = Buffer.byteLength(head);
  // Unpooled: an entry lives as long as its VM, and a slice of Node's shared 8 kB pool would
  // keep the whole slab alive long after the entries around it were replaced.
  const bytes = Buffer.allocUnsafeSlow(lastSeenAt + ISO_TIMESTAMP_BYTES + Buffer.byteLength(tail));
  bytes.write(head, 0);
  bytes.write(lastSeen, lastSeenAt, 'latin1');
  bytes.write(tail, lastSeenAt + ISO_TIMESTAMP_BYTES);
  return { bytes, lastSeenAt, lastSeen: lastSeenMs };
}
