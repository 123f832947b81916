import type { EventsOptions, RegistryClient } from './client.js';
import { isTransient, RegistryError } from './errors.js';
import { backoffDelay, sleep, type Backoff } from './timing.js';
import type { RegistryEvent, Role, Vm } from './types.js';

export interface WatchOptions {
  /**
   * Start after this revision. Default: the registry's current revision, read with a list
   * when the watch starts, so that only changes from then on are delivered.
   */
  since?: number;
  role?: Role;
  id?: string;
  /** Abort to end the iteration (the loop then simply finishes). */
  signal?: AbortSignal;
  /** Reconnection delays. Default 250 ms doubling to 10 s. */
  backoff?: Partial<Backoff>;
  /** See EventsOptions.idleTimeout. */
  idleTimeout?: number;
}

/**
 * The registry no longer holds the events after the last delivered revision (it answered
 * 410), so some changes were missed: here is the current state instead, as of `revision`.
 * Replace what you know with `vms`; events continue after `revision`.
 */
export interface Resync {
  type: 'resync';
  revision: number;
  vms: Vm[];
}

export type WatchItem = RegistryEvent | Resync;

export async function* watchEvents(client: RegistryClient, options: WatchOptions = {}): AsyncGenerator<WatchItem> {
  const { role, id, signal, idleTimeout } = options;
  const backoff: Backoff = { min: options.backoff?.min ?? 250, max: options.backoff?.max ?? 10_000 };
  const snapshot = async (): Promise<Resync> => {
    const listing = await client.list({ role, signal });
    return { type: 'resync', revision: listing.revision, vms: id === undefined ? listing.vms : listing.vms.filter((vm) => vm.id === id) };
  };

  let since = options.since;
  let failures = 0;
  while (!signal?.aborted) {
    try {
      since ??= (await snapshot()).revision;
      const stream = await client.events({ since, role, id, signal, ...(idleTimeout !== undefined && { idleTimeout }) } satisfies EventsOptions);
      failures = 0;
      try {
        for await (const event of stream) {
          // A server replaying what was already delivered must not make us repeat it.
          if (event.revision <= since) continue;
          since = event.revision;
          yield event;
        }
      } finally {
        stream.close();
      }
      // The server ended the stream (a restart, a proxy timeout): reconnect from `since`.
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof RegistryError && error.statusCode === 410) {
        const resync = await snapshot().catch((failure: unknown) => {
          if (!isTransient(failure)) throw failure;
        });
        if (resync) {
          since = resync.revision;
          yield resync;
          continue;
        }
      } else if (!isTransient(error)) {
        throw error;
      }
      failures++;
      await sleep(backoffDelay(failures, backoff), signal);
    }
  }
}
