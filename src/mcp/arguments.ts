import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { RegistryTool } from '../tools/index.js';

// MCP clients send arguments unchecked, where pi validates them before a tool runs: the same
// TypeBox schemas are checked here, without coercion, so a mistake is named, not guessed at.
const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes: false, verbose: true });

/** "/services/0/port" → "services[0].port" */
const fieldPath = (instancePath: string) =>
  instancePath
    .split('/')
    .slice(1)
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');

function describe(error: ErrorObject): string {
  const field = fieldPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  const at = (name: string) => (field ? `${field}.${name}` : name);
  switch (error.keyword) {
    case 'required':
      return `${at(String(params.missingProperty))} is required`;
    case 'additionalProperties':
      return `unknown field "${at(String(params.additionalProperty))}"`;
    case 'enum':
      return `${field} must be one of ${(params.allowedValues as string[]).join(', ')} (got ${JSON.stringify(error.data)})`;
    default:
      return `${field || 'arguments'} ${error.message ?? 'is invalid'}`;
  }
}

const validators = new WeakMap<RegistryTool, ValidateFunction>();

/** Why these arguments do not fit the tool's parameters, naming the field; undefined when they do. */
export function argumentProblem(tool: RegistryTool, args: unknown): string | undefined {
  let validate = validators.get(tool);
  if (!validate) validators.set(tool, (validate = ajv.compile(tool.parameters)));
  return validate(args) ? undefined : describe(validate.errors![0]);
}
