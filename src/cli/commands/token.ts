import { randomBytes } from 'node:crypto';
import { SCOPES, sha256Hex, type Scope } from '../../server/http/tokens.js';
import { UsageError, type Command } from '../command.js';
import { jsonText } from '../output.js';

/**
 * `vm-registry token create`: mints a secret for REGISTRY_TOKENS_FILE. The secret is shown
 * once and never stored; the file only ever holds its SHA-256 digest.
 */
export const token: Command = {
  name: 'token',
  summary: 'Create a scoped token: prints the secret once and the entry for REGISTRY_TOKENS_FILE.',
  args: 'create',
  details:
    'Add the printed entry to the "tokens" array of the tokens file, then send the server SIGHUP ' +
    '(or restart it). Give the secret to its holder as their VERS_AUTH_TOKEN.',
  positionals: { min: 1, max: 1 },
  options: {
    name: { type: 'string', value: 'NAME', help: 'who holds the token, such as worker-pool (letters, digits, . _ : @ -)' },
    scopes: { type: 'string', value: 'LIST', help: `comma-separated: ${SCOPES.join(', ')} (default read)` },
    json: { type: 'boolean', help: 'print {secret, entry} as JSON' },
  },
  async run(context) {
    if (context.positionals[0] !== 'create') throw new UsageError(`unknown token action "${context.positionals[0]}"; try: token create`);
    const name = context.values.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._:@-]{1,128}$/.test(name)) {
      throw new UsageError('--name is required: 1-128 letters, digits, ".", "_", ":", "@" or "-"');
    }
    const scopes = String(context.values.scopes ?? 'read').split(',').map((scope) => scope.trim());
    const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
    if (unknown.length > 0 || scopes.length === 0) {
      throw new UsageError(`--scopes takes ${SCOPES.join(', ')} (got ${unknown.join(', ') || 'nothing'})`);
    }
    const secret = `vmr_${randomBytes(24).toString('base64url')}`;
    const entry = { name, sha256: sha256Hex(secret), scopes: [...new Set(scopes)] as Scope[] };
    if (context.json) return context.print(jsonText({ secret, entry }).trimEnd());
    context.print(`secret (shown once; give it to "${name}" as VERS_AUTH_TOKEN):\n  ${secret}\n`);
    context.print(`entry for the "tokens" array of REGISTRY_TOKENS_FILE:\n  ${JSON.stringify(entry)}`);
  },
};
