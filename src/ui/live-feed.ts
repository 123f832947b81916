import { readSse } from '../client/sse.js';
import type { Vm } from '../domain/schemas.js';
import type { EventType } from '../store/store.js';
import { Unauthorized, type Api, type Listing } from './api.js';

export interface ChangeEvent {
  type: EventType;
  revision: number;
  at: string;
  vm: Vm;
}

export type Connection = { state: 'connecting' } | { state: 'live'; revision: number } | { state: 'offline'; reason: string };

export interface FeedHandlers {
  /** A full listing: replace everything known. */
  snapshot(listing: Listing): void;
  change(event: ChangeEvent): void;
  connection(connection: Connection): void;
  unauthorized(message: string): void;
}

/**
 * Heartbeats make no events, so lastSeen in the page only moves with a fresh listing: take
 * one this often while the tab is visible.
 */
const RELIST_MS = 30_000;
const BACKOFF_MS = { min: 1000, max: 15_000 };

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * List, then watch from the listing's revision, so that no change falls in between. The
 * stream is read with fetch, because EventSource cannot send an Authorization header.
 * Reconnects resume from the last revision seen; a 410 (the log moved on) or a `reset` event
 * (the server lost its place in the log) lists again.
 */
export async function follow(api: Api, handlers: FeedHandlers, signal: AbortSignal): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      handlers.connection({ state: 'connecting' });
      const listing = await api.list();
      handlers.snapshot(listing);
      let since = listing.revision;
      let relistAt = Date.now() + RELIST_MS;
      let relist = false;
      while (!relist) {
        const connection = AbortSignal.any([signal, AbortSignal.timeout(relistAt - Date.now())]);
        try {
          const response = await api.fetch(`/registry/events?since=${since}`, {
            headers: { accept: 'text/event-stream' },
            signal: connection,
          });
          if (response.status === 410) break;
          if (!response.ok || !response.body) throw new Error(`the event stream answered HTTP ${response.status}`);
          failures = 0;
          handlers.connection({ state: 'live', revision: since });
          for await (const message of readSse(response.body)) {
            if (message.event === 'reset') {
              relist = true;
              break;
            }
            const event = JSON.parse(message.data) as ChangeEvent;
            since = event.revision;
            handlers.change(event);
            handlers.connection({ state: 'live', revision: since });
          }
        } catch (error) {
          if (!connection.aborted || signal.aborted) throw error;
        }
        if (Date.now() >= relistAt) {
          // Time for a fresh listing, unless nobody is looking: then keep watching.
          if (!document.hidden) break;
          relistAt = Date.now() + RELIST_MS;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof Unauthorized) return handlers.unauthorized(error.message);
      failures++;
      handlers.connection({ state: 'offline', reason: (error as Error).message });
      await sleep(Math.min(BACKOFF_MS.max, BACKOFF_MS.min * 2 ** (failures - 1)), signal);
    }
  }
}
