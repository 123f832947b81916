import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { RegistryClient, type RegistryClientOptions } from '../client/index.js';
import { agentError, selfFromEnv } from '../tools/index.js';
import { createRegistryMcpServer, type ChangeSource } from './server.js';

const RESTART = 'restart the MCP server (your MCP client starts `vm-registry mcp`)';

/**
 * Changes as the SDK's watch reports them over the registry's event stream. It starts from
 * the revision of a list taken first, so that it reports every change after it resolves.
 */
export function watchedChanges(client: () => RegistryClient, log: (message: string) => void): ChangeSource {
  return async (listener) => {
    const registry = client();
    const stop = new AbortController();
    // Any list carries the current revision; the stopped VMs are usually the shortest one.
    const { revision } = await registry.list({ status: 'stopped', signal: stop.signal });
    void (async () => {
      try {
        for await (const item of registry.watch({ since: revision, signal: stop.signal })) {
          listener(item.type === 'resync' ? {} : { vm: item.vm });
        }
      } catch (error) {
        log(`vm-registry mcp: stopped watching the registry, so subscriptions get no more updates: ${agentError(error, RESTART).message}`);
      }
    })();
    return () => stop.abort();
  };
}

/**
 * Serves MCP on stdin/stdout until stdin closes or the signal aborts. Only the protocol goes
 * to stdout; diagnostics go to stderr. The client is built per call, so a missing or wrong
 * URL is a tool error that says what to do, not a crash.
 */
export async function serveStdio(connection: Pick<RegistryClientOptions, 'url' | 'token'>, signal: AbortSignal): Promise<void> {
  const log = (message: string) => process.stderr.write(`${message}\n`);
  const client = () => new RegistryClient(connection);
  const server = createRegistryMcpServer({ client, self: selfFromEnv, changes: watchedChanges(client, log), restart: RESTART, log });
  const closed = new Promise<void>((resolve) => {
    const close = () => void server.close().finally(resolve);
    process.stdin.once('end', close);
    signal.addEventListener('abort', close, { once: true });
  });
  await server.connect(new StdioServerTransport());
  await closed;
}
