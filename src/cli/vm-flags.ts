import type { Metadata, Registration, Service, VmUpdate } from '../client/index.js';
import { ROLES, STATUSES } from '../domain/schemas.js';
import { listOption, stringOption, UsageError, type Context, type OptionSpec } from './command.js';

/** The fields a person can set on update; register and put add id, role and registeredBy. */
export const UPDATE_FLAGS: Record<string, OptionSpec> = {
  name: { type: 'string', value: 'NAME', help: 'human- or agent-readable name' },
  status: { type: 'string', value: 'STATUS', help: STATUSES.join('|') },
  address: { type: 'string', value: 'ADDRESS', help: 'where to reach it, such as abc-123.vm.vers.sh' },
  service: {
    type: 'string',
    multiple: true,
    value: '[PROTOCOL://]NAME:PORT[/PATH]',
    help: 'a service, such as pi-rpc:3001, board:3000/health or https://api:443',
  },
  metadata: { type: 'string', value: 'JSON', help: 'metadata as a JSON object (replaces it)' },
  meta: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'one metadata key; a VALUE that is JSON is read as JSON' },
};

export const REGISTRATION_FLAGS: Record<string, OptionSpec> = {
  role: { type: 'string', value: 'ROLE', help: ROLES.join('|') },
  ...UPDATE_FLAGS,
  'registered-by': { type: 'string', value: 'WHO', help: 'who registers it (default: $USER, else "cli")' },
};

export const REGISTRATION_ARGS = 'ID --name NAME --role ROLE --address ADDRESS';

function service(text: string): Service {
  const match = /^(?:([^:/]+):\/\/)?([^:]+):(\d+)(\/.*)?$/.exec(text.trim());
  if (!match) {
    throw new UsageError(`--service must look like NAME:PORT, NAME:PORT/PATH or PROTOCOL://NAME:PORT, such as pi-rpc:3001 (got "${text}")`);
  }
  const [, protocol, name, port, healthPath] = match;
  return { name, port: Number(port), ...(protocol && { protocol }), ...(healthPath && { healthPath }) };
}

function metadataObject(text: string): Metadata {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`--metadata must be a JSON object such as '{"task":"billing"}' (got ${text})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`--metadata must be a JSON object, not ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Metadata;
}

/** `--meta key=value` pairs; values that read as JSON (numbers, true, objects) stay typed. */
export function metaPairs(context: Context): Metadata | undefined {
  const pairs = listOption(context, 'meta');
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(
    pairs.map((pair) => {
      const equals = pair.indexOf('=');
      if (equals < 1) throw new UsageError(`--meta must look like KEY=VALUE (got "${pair}")`);
      const raw = pair.slice(equals + 1);
      let value: unknown = raw;
      try {
        value = JSON.parse(raw);
      } catch {
        // Not JSON: keep the text as it was typed.
      }
      return [pair.slice(0, equals), value];
    }),
  );
}

/** The changes the update flags ask for; `--meta` is merged by the caller, which knows the current metadata. */
export function updateFrom(context: Context): VmUpdate {
  const status = stringOption(context, 'status');
  const services = listOption(context, 'service');
  const metadata = stringOption(context, 'metadata');
  const changes: VmUpdate = {
    ...(stringOption(context, 'name') !== undefined && { name: stringOption(context, 'name') }),
    ...(status !== undefined && { status: status as VmUpdate['status'] }),
    ...(stringOption(context, 'address') !== undefined && { address: stringOption(context, 'address') }),
    ...(services.length > 0 && { services: services.map(service) }),
    ...(metadata !== undefined && { metadata: metadataObject(metadata) }),
  };
  return changes;
}

/** A full registration from ID and flags; the server validates the values and names any that are wrong. */
export function registrationFrom(context: Context): Registration {
  const { metadata, ...fields } = updateFrom(context);
  const meta = metaPairs(context);
  const missing = ['name', 'role', 'address'].filter((flag) => stringOption(context, flag) === undefined);
  if (missing.length > 0) throw new UsageError(`missing ${missing.map((flag) => `--${flag}`).join(', ')}`);
  return {
    id: context.positionals[0],
    ...fields,
    name: fields.name!,
    role: stringOption(context, 'role') as Registration['role'],
    address: fields.address!,
    registeredBy: stringOption(context, 'registered-by') ?? (process.env.USER || 'cli'),
    ...((metadata || meta) && { metadata: { ...metadata, ...meta } }),
  };
}
