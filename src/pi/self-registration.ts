import type { ExtensionAPI, ExtensionContext } from '@mariozechner/pi-coding-agent';
import type { KeepAlive, RegistryClient, Role } from '../client/index.js';
import { selfFromEnv } from '../tools/index.js';

/**
 * When pi runs on a Vers VM (VERS_VM_ID set): register with PUT at session start, heartbeat
 * every 2 minutes, and mark the VM stopped when pi quits. A session switch (/new, /resume,
 * /reload) only hands over to the next session's keeper, which registers again.
 */
export function installSelfRegistration(pi: ExtensionAPI, client: () => RegistryClient): void {
  let keeper: KeepAlive | undefined;

  pi.on('session_start', async (_event, ctx) => {
    const self = selfFromEnv();
    if (!self.id) return;
    let registry: RegistryClient;
    try {
      registry = client();
    } catch (error) {
      notify(ctx, `vm-registry: not registering this VM: ${(error as Error).message}`, 'warning');
      return;
    }
    keeper = registry.keepAlive(
      {
        id: self.id,
        name: self.name ?? self.id,
        role: (process.env.VERS_AGENT_ROLE?.trim() || 'worker') as Role,
        address: `${self.id}.vm.vers.sh`,
        registeredBy: 'self',
      },
      {
        interval: '2m',
        onStateChange: ({ state, error }) => {
          if (ctx.hasUI) ctx.ui.setStatus('vm-registry', `registry: ${state}`);
          if (state === 'stopped' && error) notify(ctx, `vm-registry: self-registration stopped: ${error.message}`, 'error');
        },
      },
    );
  });

  pi.on('session_shutdown', async (event) => {
    const ending = keeper;
    keeper = undefined;
    if (!ending) return;
    await ending.stop();
    if (event.reason === 'quit' && ending.vm) {
      await client()
        .update(ending.vm.id, { status: 'stopped' })
        .catch(() => undefined);
    }
  });
}

function notify(ctx: ExtensionContext, message: string, level: 'info' | 'warning' | 'error'): void {
  if (ctx.hasUI) ctx.ui.notify(message, level);
}
