import type { CheckedService } from './service-health.js';
import type { ServiceHealth } from './schemas/service-health.js';

/**
 * A VM's JSON exactly as the API answers it (fast-json-stringify over VmSchema: required
 * fields in schema order, stale last of them, then the optional services and metadata,
 * services' fields in their schema order whatever order the client sent), built once per
 * change so that reads send stored text instead of serializing objects again. The text splits
 * around lastSeen's and stale's values, the two things a reader decides at answer time: a
 * heartbeat only moves lastSeen, and the clock only turns stale.
 */
const str = JSON.stringify;

const healthJson = (h: ServiceHealth) =>
  `{"status":${str(h.status)}${h.checkedAt === undefined ? '' : `,"checkedAt":${str(h.checkedAt)}`}${h.output === undefined ? '' : `,"output":${str(h.output)}`}}`;

export function servicesJson(services: readonly CheckedService[]): string {
  return `[${services
    .map(
      (s) =>
        `{"name":${str(s.name)},"port":${s.port}` +
        (s.protocol === undefined ? '' : `,"protocol":${str(s.protocol)}`) +
        (s.healthPath === undefined ? '' : `,"healthPath":${str(s.healthPath)}`) +
        (s.health === undefined ? '' : `,"health":${healthJson(s.health)}`) +
        '}',
    )
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

/** A VM's JSON around lastSeen's and stale's values: the whole is `head + lastSeen + STALE_KEY + stale + tail`. */
export interface VmJsonText {
  head: string;
  tail: string;
}

/** What lies between lastSeen's value and stale's. */
const STALE_KEY = '","stale":';

export function vmJsonParts(vm: VmJsonParts): VmJsonText {
  return {
    head:
      `{"id":${str(vm.id)},"name":${str(vm.name)},"role":${str(vm.role)},"status":${str(vm.status)},"address":${str(vm.address)}` +
      `,"registeredBy":${str(vm.registeredBy)},"registeredAt":${str(vm.registeredAt)},"lastSeen":"`,
    tail: (vm.services === null ? '' : `,"services":${vm.services}`) + (vm.metadata === null ? '' : `,"metadata":${vm.metadata}`) + '}',
  };
}

/** The whole JSON of a VM last seen at `lastSeenMs`, stale or not. */
export const vmJson = ({ head, tail }: VmJsonText, lastSeenMs: number, stale: boolean): string =>
  head + isoTimestamp(lastSeenMs) + STALE_KEY + stale + tail;

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

const MS_PER_DAY = 86_400_000;
const ZERO = 0x30;
let lastDay = { day: NaN, prefix: '' };

/** Writes `n` as `digits` decimal digits at `at`, zero-padded. */
function writeDigits(target: Buffer, at: number, n: number, digits: number): void {
  for (let i = at + digits - 1; i >= at; i--) {
    target[i] = ZERO + (n % 10);
    n = (n / 10) | 0;
  }
}

/**
 * Writes isoTimestamp(ms) at `at` without building the string: a listing writes one per
 * entry, each with its own lastSeen. The date part is formatted once per day.
 */
export function writeIsoTimestamp(target: Buffer, at: number, ms: number): void {
  const day = Math.floor(ms / MS_PER_DAY);
  if (day !== lastDay.day) lastDay = { day, prefix: new Date(day * MS_PER_DAY).toISOString().slice(0, 11) };
  target.write(lastDay.prefix, at, 'latin1');
  let rest = ms - day * MS_PER_DAY;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  writeDigits(target, at + 11, hours, 2);
  target[at + 13] = 0x3a;
  writeDigits(target, at + 14, minutes, 2);
  target[at + 16] = 0x3a;
  writeDigits(target, at + 17, seconds, 2);
  target[at + 19] = 0x2e;
  writeDigits(target, at + 20, rest - seconds * 1000, 3);
  target[at + 23] = 0x5a;
}

/**
 * A VM's JSON as the mirror keeps it: one flat string (a heap string costs far less per VM
 * than a Buffer and its backing store), showing stale false, with the size of its UTF-8
 * bytes and where lastSeen's value starts in them, so that a reader writes the current
 * lastSeen over the one the text was built with, and true over false when the VM is stale,
 * instead of building the text again.
 */
export interface VmJsonString {
  json: string;
  lastSeenAt: number;
  size: number;
}

/** From lastSeen's value to stale's, in bytes. */
const STALE_VALUE_OFFSET = ISO_TIMESTAMP_BYTES + STALE_KEY.length;
const TRUE = Buffer.from('true');
const CLOSE_BRACE = 0x7d;

export function vmJsonString(text: VmJsonText, lastSeenMs: number): VmJsonString {
  const json = vmJson(text, lastSeenMs, false);
  const lastSeenAt = Buffer.byteLength(text.head);
  // byteLength also flattens the concatenation, so the mirror keeps one string, not a tree of its parts.
  return { json, lastSeenAt, size: Buffer.byteLength(json) };
}

/** How many bytes writeVmJson writes: "true" is one byte shorter than "false". */
export const vmJsonSize = ({ size }: VmJsonString, stale: boolean): number => (stale ? size - 1 : size);

/** Writes the JSON at `at` showing `lastSeenMs` and `stale`; returns the offset after it. */
export function writeVmJson(target: Buffer, at: number, { json, lastSeenAt, size }: VmJsonString, lastSeenMs: number, stale: boolean): number {
  // Pure ASCII, the common case, is a plain copy.
  const encoding = size === json.length ? 'latin1' : 'utf8';
  if (!stale) {
    target.write(json, at, encoding);
    writeIsoTimestamp(target, at + lastSeenAt, lastSeenMs);
    return at + size;
  }
  // All but the closing brace (so that nothing is written past the shorter answer), then
  // the rest moved one byte back over false's last letter, "true" over the others, and the brace.
  target.write(json, at, size - 1, encoding);
  writeIsoTimestamp(target, at + lastSeenAt, lastSeenMs);
  const value = at + lastSeenAt + STALE_VALUE_OFFSET;
  target.copyWithin(value + TRUE.length, value + TRUE.length + 1, at + size - 1);
  target.set(TRUE, value);
  target[at + size - 2] = CLOSE_BRACE;
  return at + size - 1;
}
