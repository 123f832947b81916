import { RegistryConfigError, RegistryError, RegistryUnreachableError } from '../client/index.js';

/**
 * Rewrites a failure as advice an agent can act on: pi and MCP clients show it to the model
 * as an error result. `restart` names what to restart after fixing the environment, which
 * differs by host (pi, or the MCP client that started `vm-registry mcp`).
 */
export function agentError(error: unknown, restart = 'restart pi'): Error {
  if (error instanceof RegistryConfigError) {
    return new Error(
      `${error.message}. The registry tools need the infra VM's URL: ask the user for it, or have them ` +
        `run \`export VERS_INFRA_URL=http://<infra-vm-address>:3000\` (plus VERS_AUTH_TOKEN if the registry needs one) and ${restart}.`,
    );
  }
  if (error instanceof RegistryUnreachableError) {
    return new Error(`${error.message}. Check that VERS_INFRA_URL points at a running registry; try again later if it is restarting.`);
  }
  if (error instanceof RegistryError) {
    const advice: Record<number, string> = {
      400: 'Fix the named field and call the tool again.',
      401: 'The registry needs a bearer token: VERS_AUTH_TOKEN is missing or wrong; ask the user for the right one.',
      403: 'This token may not do that: only the registrant (or an admin token) may change a VM, and a read-only token may change none.',
      404: 'Call registry_list to see what is registered, or registry_register to add it.',
      409: 'Call registry_update to change it, or registry_register with replace: true to overwrite it.',
      412: 'Someone changed it meanwhile: call registry_get and retry with the new state.',
    };
    return new Error(`Registry answered ${error.statusCode}: ${error.message}. ${advice[error.statusCode] ?? ''}`.trim());
  }
  return error instanceof Error ? error : new Error(String(error));
}
