import { Ajv, type ValidateFunction } from 'ajv';
import { describeSchemaViolation } from '../domain/schema-messages.js';
import type { RegistryTool } from '../tools/index.js';

// MCP clients send arguments unchecked, where pi validates them before a tool runs: the same
// TypeBox schemas are checked here, without coercion, so a mistake is named, not guessed at.
const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes: false, verbose: true });

const validators = new WeakMap<RegistryTool, ValidateFunction>();

/** Why these arguments do not fit the tool's parameters, naming the field; undefined when they do. */
export function argumentProblem(tool: RegistryTool, args: unknown): string | undefined {
  let validate = validators.get(tool);
  if (!validate) validators.set(tool, (validate = ajv.compile(tool.parameters)));
  return validate(args) ? undefined : describeSchemaViolation('arguments', validate.errors![0]);
}
