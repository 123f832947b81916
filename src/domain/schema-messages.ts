import { ABSOLUTE_PATH, ID_PATTERN, PROTOCOL_PATTERN } from './schemas/vm.js';
import { REVISION_PATTERN } from './schemas/query.js';

const PATTERN_RULES: Record<string, string> = {
  [ID_PATTERN]: 'may only contain letters, digits, ".", "_", ":" and "-"',
  [ABSOLUTE_PATH]: 'must start with "/"',
  [PROTOCOL_PATTERN]: 'must be a protocol name such as http, https, grpc or tcp: a letter, then letters, digits, "+", "-" or "."',
  [REVISION_PATTERN]: 'must be a revision: a whole number, 0 or more',
};

const TYPE_NAMES: Record<string, string> = {
  object: 'a JSON object',
  array: 'an array',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
};

/** "/services/0/port" → "services[0].port" */
function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

/** What a request body or a tool's arguments are called as a whole; their fields go by their own names. */
const WHOLES: Record<string, string> = { body: 'request body', arguments: 'arguments' };
const PLACES: Record<string, string> = { querystring: 'query parameter', params: 'path parameter', headers: 'header' };

function subject(context: string, field: string): string {
  if (context in WHOLES) return field || WHOLES[context];
  const where = PLACES[context] ?? context;
  return field ? `${where} ${field}` : where;
}

const allowedKeys = (schema: unknown) =>
  Object.keys((schema as { properties?: object } | undefined)?.properties ?? {}).join(', ');

/** A schema violation as Ajv reports it (Fastify validates with Ajv), made with `verbose` for data and parentSchema. */
export interface SchemaViolation {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: unknown;
  data?: unknown;
}

/**
 * One sentence that names the field and the rule, such as `services[0].port must be at most
 * 65535` or `role must be one of infra, …`, the same over HTTP and MCP. `context` says where
 * the value was: body, querystring, params or headers (Fastify's names), or arguments (a tool's).
 */
export function describeSchemaViolation(context: string, error: SchemaViolation): string {
  const field = fieldPath(error.instancePath);
  const { params } = error;
  const what = subject(context, field);
  switch (error.keyword) {
    case 'required':
      return `${subject(context, field ? `${field}.${params.missingProperty}` : String(params.missingProperty))} is required`;
    case 'additionalProperties': {
      if (context === 'querystring') {
        const accepted = allowedKeys(error.parentSchema);
        return `unknown query parameter "${params.additionalProperty}"; ${accepted ? `accepted: ${accepted}` : 'this route takes none'}`;
      }
      const where = field ? ` in ${field}` : context in WHOLES ? '' : ` in ${subject(context, '')}`;
      return `unknown field "${params.additionalProperty}"${where}; allowed fields: ${allowedKeys(error.parentSchema)}`;
    }
    case 'minProperties':
      return `${what} must set at least one of: ${allowedKeys(error.parentSchema)}`;
    case 'enum':
      return `${what} must be one of ${(params.allowedValues as string[]).join(', ')} (got ${JSON.stringify(error.data)})`;
    case 'type':
      if (context === 'querystring' && Array.isArray(error.data)) return `${what} is given more than once`;
      return `${what} must be ${TYPE_NAMES[String(params.type)] ?? params.type}`;
    case 'minLength':
      // Bodies are trimmed first, so an empty string may have been a blank one.
      return `${what} must not be empty or blank`;
    case 'maxLength':
      return `${what} must be at most ${params.limit} characters`;
    case 'pattern':
      return `${what} ${PATTERN_RULES[String(params.pattern)] ?? `must match ${params.pattern}`}`;
    case 'minimum':
      return `${what} must be at least ${params.limit}`;
    case 'maximum':
      return `${what} must be at most ${params.limit}`;
    case 'maxItems':
      return `${what} may hold at most ${params.limit} items`;
    default:
      return `${what} ${error.message ?? 'is invalid'}`;
  }
}
