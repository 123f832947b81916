import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { ABSOLUTE_PATH, ID_PATTERN, PROTOCOL_PATTERN } from '../../domain/schemas.js';
import { REVISION_PATTERN } from './blocking-query.js';

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

function subject(context: string, field: string): string {
  if (context === 'body') return field || 'request body';
  const where = context === 'querystring' ? 'query parameter' : context === 'params' ? 'path parameter' : context;
  return field ? `${where} ${field}` : where;
}

const allowedKeys = (schema: unknown) =>
  Object.keys((schema as { properties?: object } | undefined)?.properties ?? {}).join(', ');

/**
 * Turns the first schema violation into one sentence that names the field and the rule,
 * such as `services[0].port must be at most 65535` or `role must be one of infra, …`.
 */
export function describeValidationError(context: string, errors: FastifySchemaValidationError[]): string {
  const error = errors[0] as FastifySchemaValidationError & { parentSchema?: unknown; data?: unknown };
  const field = fieldPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  const what = subject(context, field);
  switch (error.keyword) {
    case 'required':
      return `${subject(context, field ? `${field}.${params.missingProperty}` : String(params.missingProperty))} is required`;
    case 'additionalProperties': {
      if (context === 'querystring') {
        const accepted = allowedKeys(error.parentSchema);
        return `unknown query parameter "${params.additionalProperty}"; ${accepted ? `accepted: ${accepted}` : 'this route takes none'}`;
      }
      const where = field ? ` in ${field}` : context === 'body' ? '' : ` in ${subject(context, '')}`;
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

const NoQuerySchema = Type.Object({}, { additionalProperties: false });

/**
 * A query parameter a route does not know is refused rather than ignored, so that a typo such
 * as ?roles=infra never silently widens an answer: routes that take none get a schema saying
 * so. The pages (/ui, /docs), hidden from the API document, keep accepting whatever a browser adds.
 */
export function refuseUnknownQueryParameters(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (route.schema?.hide || route.schema?.querystring) return;
    route.schema = { ...route.schema, querystring: NoQuerySchema };
  });
}
