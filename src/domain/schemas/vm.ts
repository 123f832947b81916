import { Type, type Static } from '@sinclair/typebox';
import { ServiceHealthSchema } from './service-health.js';

/** Every size limit in one place: the schemas, the README and the error messages read them from here. */
export const LIMITS = {
  idLength: 128,
  nameLength: 200,
  addressLength: 255,
  registeredByLength: 200,
  services: 32,
  serviceNameLength: 64,
  protocolLength: 16,
  healthPathLength: 256,
  metadataBytes: 16 * 1024,
  metadataDepth: 16,
  bodyBytes: 64 * 1024,
  /** Blocking queries: how long ?wait= holds an answer by default, and at most. */
  defaultWaitMs: 60_000,
  maxWaitMs: 10 * 60_000,
} as const;

export const ROLES = ['infra', 'lieutenant', 'worker', 'golden', 'custom'] as const;
export const STATUSES = ['running', 'paused', 'stopped'] as const;
export type Role = (typeof ROLES)[number];
export type Status = (typeof STATUSES)[number];

export const ID_PATTERN = '^[A-Za-z0-9._:-]+$';
export const ABSOLUTE_PATH = '^/';
/**
 * A URL scheme's letters (RFC 3986: a letter, then letters, digits, "+", "-", "."), such as
 * http, https, grpc or tcp. Any case and surrounding spaces are accepted, since agents'
 * models fill this field freely; it is stored trimmed and in lower case.
 */
export const PROTOCOL_PATTERN = '^[A-Za-z][A-Za-z0-9+.-]*$';

/**
 * The one trimming rule: every string in a request body loses its surrounding white space
 * before the body is checked, so the schemas' lengths and patterns judge what is stored, a
 * blank string is an empty one, and " t1 " is the id t1. The exception is metadata, the
 * caller's own JSON, stored exactly as sent. Trims in place; a walk with a stack of its own,
 * because a body is checked (and its nesting refused) only after this.
 */
export function trimBodyStrings(body: unknown): unknown {
  if (typeof body === 'string') return body.trim();
  const pending: unknown[] = [body];
  while (pending.length > 0) {
    const holder = pending.pop();
    if (holder === null || typeof holder !== 'object') continue;
    const fields = holder as Record<string, unknown>;
    const isArray = Array.isArray(holder);
    for (const key of Object.keys(fields)) {
      if (!isArray && key === 'metadata') continue;
      const value = fields[key];
      if (typeof value === 'string') fields[key] = value.trim();
      else if (value !== null && typeof value === 'object') pending.push(value);
    }
  }
  return body;
}

// A plain `enum` keeps the validation message short ("must be one of …") where a union of literals would not.
const oneOf = <T extends readonly string[]>(values: T, description: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });

export const RoleSchema = oneOf(ROLES, 'What the VM is for; discovery is by role.');
export const StatusSchema = oneOf(STATUSES, 'Lifecycle state; only running VMs are discovered.');

// Not blank: bodies are trimmed before they are checked (trimBodyStrings).
const text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, description });

export const VmIdSchema = Type.String({
  minLength: 1,
  maxLength: LIMITS.idLength,
  pattern: ID_PATTERN,
  description: 'The Vers VM id (letters, digits, ".", "_", ":" and "-").',
});

export const ServiceSchema = Type.Object(
  {
    name: text(LIMITS.serviceNameLength, 'Service name, such as "pi-rpc" or "board".'),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: LIMITS.protocolLength,
        pattern: PROTOCOL_PATTERN,
        description: 'How to speak to the service, such as "http", "https", "grpc" or "tcp"; stored in lower case.',
      }),
    ),
    healthPath: Type.Optional(
      Type.String({ minLength: 1, maxLength: LIMITS.healthPathLength, pattern: ABSOLUTE_PATH }),
    ),
  },
  { additionalProperties: false },
);
export type Service = Static<typeof ServiceSchema>;

export const ServicesSchema = Type.Array(ServiceSchema, { maxItems: LIMITS.services });

/** A service in an answer: as declared, plus the health checker's verdict (never sent by clients). */
export const VmServiceSchema = Type.Object({ ...ServiceSchema.properties, health: Type.Optional(ServiceHealthSchema) });

export const MetadataSchema = Type.Object(
  {},
  { additionalProperties: true, description: 'Free-form JSON object.' },
);
export type Metadata = Record<string, unknown>;

const updatableFields = {
  name: text(LIMITS.nameLength, 'Human- or agent-readable name.'),
  status: StatusSchema,
  address: text(LIMITS.addressLength, 'Where to reach the VM, such as "abc-123.vm.vers.sh".'),
  services: ServicesSchema,
  metadata: MetadataSchema,
};

/** What a client sends to register (POST) or register-or-replace (PUT) a VM. */
export const RegistrationSchema = Type.Object(
  {
    id: VmIdSchema,
    name: updatableFields.name,
    role: RoleSchema,
    address: updatableFields.address,
    registeredBy: text(LIMITS.registeredByLength, 'Who registered the VM.'),
    status: Type.Optional(Type.Unsafe<Status>({ ...StatusSchema, default: 'running' })),
    services: Type.Optional(updatableFields.services),
    metadata: Type.Optional(updatableFields.metadata),
  },
  { additionalProperties: false },
);
export type Registration = Static<typeof RegistrationSchema>;

/** PUT carries the id in the path; a body id, when present, must agree with it. */
export const ReplacementSchema = Type.Object(
  { ...RegistrationSchema.properties, id: Type.Optional(VmIdSchema) },
  { additionalProperties: false },
);
export type Replacement = Static<typeof ReplacementSchema>;

export const VmUpdateSchema = Type.Object(
  {
    name: Type.Optional(updatableFields.name),
    status: Type.Optional(updatableFields.status),
    address: Type.Optional(updatableFields.address),
    services: Type.Optional(updatableFields.services),
    metadata: Type.Optional(updatableFields.metadata),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type VmUpdate = Static<typeof VmUpdateSchema>;

/** A registry entry as every endpoint returns it: agent-services' RegisteredVM. */
export const VmSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  status: StatusSchema,
  address: Type.String(),
  services: Type.Optional(Type.Array(VmServiceSchema)),
  metadata: Type.Optional(MetadataSchema),
  registeredBy: Type.String(),
  registeredAt: Type.String({ format: 'date-time' }),
  lastSeen: Type.String({ format: 'date-time', description: 'Moved by register, PUT, heartbeat, and PATCH to running.' }),
  // Declared right after lastSeen: the stores' prepared JSON puts it there, as the serializer does.
  stale: Type.Boolean({
    description: 'Running, but no heartbeat for longer than the stale threshold: judged when the answer (or the event) was made, by the store\'s clock.',
  }),
});
export type Vm = Static<typeof VmSchema>;

export const VmListSchema = Type.Object({
  vms: Type.Array(VmSchema),
  count: Type.Integer(),
  revision: Type.Integer({ description: 'Registry revision the list reflects.' }),
});

export const HeartbeatSchema = Type.Object({
  id: Type.String(),
  lastSeen: Type.String({ format: 'date-time' }),
});

export const DeletedSchema = Type.Object({ deleted: Type.Literal(true), id: Type.String() });
