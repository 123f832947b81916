import type { ExtensionAPI } from '@mariozechner/pi-coding-agent';
import { RegistryClient } from '../client/index.js';
import { selfFromEnv } from '../tools/index.js';
import { installSelfRegistration } from './self-registration.js';
import { piTools } from './tools.js';

/**
 * The pi extension: the registry_* tools, and self-registration when pi runs on a Vers VM.
 * Settings come from the environment at each call (VERS_INFRA_URL, VERS_AUTH_TOKEN), so a
 * missing URL is reported when a tool is used, with what to do, rather than at load.
 */
export default function vmRegistryExtension(pi: ExtensionAPI): void {
  const client = () => new RegistryClient();
  for (const tool of piTools(client, selfFromEnv)) pi.registerTool(tool);
  installSelfRegistration(pi, client);
}
