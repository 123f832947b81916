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
  /**
   * Told when a stream opens (`watching`) and before each wait after a failure worth retrying
   * (`retrying`, with the error and the wait in ms): the iterator itself stays silent until a
   * change arrives, so this is how a caller can tell a quiet registry from an unreachable one.
   */
  onStateChange?: (change: WatchStateChange) => void;
}

export type WatchStateChange = { state: 'watching' } | { state: 'retrying'; error: unknown; retryIn: number };

/**
 * The registry no longer holds the events after the last delivered revision (it answered
 * 410, or its stream sent `reset`), so some changes were missed: here is the current state
 * instead, as of `revision`.
 * Replace what you know with `vms`; events continue after `revision`.
 */
export interface Resync {
  type: 'resync';
  revision: number;
  vms: Vm[];
}

export type WatchItem = RegistryEvent | Resync;

export async function* watchEvents(client: RegistryClient, options: WatchOptions = {}): AsyncGenerator<WatchItem> {
  const { role, id, signal, idleTimeout, onStateChange } = options;
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
      onStateChange?.({ state: 'watching' });
      try {
        for await (const event of stream) {
          if (event.type === 'reset') {
            const resync = await snapshot();
            since = resync.revision;
            yield resync;
            // The stream goes on after the reset's revision, skipping below what the listing
            // already holds; a listing older than the reset needs a stream from its own revision.
            if (resync.revision < event.revision) break;
            continue;
          }
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
      const retryIn = backoffDelay(failures, backoff);
      onStateChange?.({ state: 'retrying', error, retryIn });
      await sleep(retryIn, signal);
    }
  }
}
