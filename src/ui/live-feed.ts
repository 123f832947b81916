import { readSse } from '../client/sse.js';
import type { Vm } from '../domain/schemas/vm.js';
import type { EventType } from '../domain/schemas/events.js';
import { Unauthorized, type Api, type Listing } from './api.js';

export interface ChangeEvent {
  type: EventType;
  revision: number;
  at: string;
  vm: Vm;
}

/**
 * What the header says of the feed. "live" only while an event stream is open and caught up;
 * "re-listing" while a fresh listing replaces the page's copy (a 410, a server reset, the
 * periodic refresh); "disconnected" while the stream is down and being retried.
 */
export type Connection =
  | { state: 'connecting' }
  | { state: 'live'; revision: number }
  | { state: 're-listing'; reason: string }
  | { state: 'disconnected'; reason: string };

export interface FeedHandlers {
  /** A full listing: replace everything known. */
  snapshot(listing: Listing): void;
  /** A change after the listing: apply it. */
  change(event: ChangeEvent): void;
  /** A change the listing already holds, replayed from the log for the timeline only. */
  history(event: ChangeEvent): void;
  connection(connection: Connection): void;
  unauthorized(message: string): void;
}

/**
 * Heartbeats make no events, so lastSeen in the page only moves with a fresh listing: take
 * one this often while the tab is visible.
 */
const RELIST_MS = 30_000;
const BACKOFF_MS = { min: 1000, max: 15_000 };
/** Past changes the timeline starts with, replayed from the server's event log. */
export const HISTORY = 200;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * List, then watch from the listing's revision, so that no change falls in between. The
 * stream is read with fetch, because EventSource cannot send an Authorization header.
 * The first stream starts a little before the listing, to fill the timeline with recent
 * changes; reconnects resume from the last revision seen. A 410 (the log moved on) or a
 * `reset` event (the server resynchronised) lists again.
 */
export async function follow(api: Api, handlers: FeedHandlers, signal: AbortSignal): Promise<void> {
  let failures = 0;
  let relistReason: string | undefined;
  let replayHistory = true;
  while (!signal.aborted) {
    try {
      handlers.connection(relistReason ? { state: 're-listing', reason: relistReason } : { state: 'connecting' });
      const listing = await api.list();
      handlers.snapshot(listing);
      relistReason = undefined;
      let since = listing.revision;
      let from = replayHistory ? Math.max(0, since - HISTORY) : since;
      replayHistory = false;
      let relistAt = Date.now() + RELIST_MS;
      for (;;) {
        const connection = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, relistAt - Date.now()))]);
        try {
          const response = await api.fetch(`/registry/events?since=${from}`, {
            headers: { accept: 'text/event-stream' },
            signal: connection,
          });
          if (response.status === 410 && from < since) {
            // The log no longer reaches that far back: no history, then.
            from = since;
            continue;
          }
          if (response.status === 410) {
            relistReason = 'the event log moved on';
            break;
          }
          if (!response.ok || !response.body) throw new Error(`the event stream answered HTTP ${response.status}`);
          failures = 0;
          handlers.connection({ state: 'live', revision: since });
          for await (const message of readSse(response.body)) {
            if (message.event === 'reset') {
              relistReason = 'the server resynchronised';
              break;
            }
            const event = JSON.parse(message.data) as ChangeEvent;
            from = event.revision;
            if (event.revision <= since) {
              handlers.history(event);
              continue;
            }
            since = event.revision;
            handlers.change(event);
            handlers.connection({ state: 'live', revision: since });
          }
          if (relistReason) break;
          // The server ended the stream (a restart, a proxy): it is no longer live.
          throw new Error('the event stream ended');
        } catch (error) {
          if (!connection.aborted || signal.aborted) throw error;
        }
        if (Date.now() >= relistAt) {
          // Time for a fresh listing, unless nobody is looking: then keep watching.
          if (!document.hidden) {
            relistReason = 'refreshing last seen';
            break;
          }
          relistAt = Date.now() + RELIST_MS;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof Unauthorized) return handlers.unauthorized(error.message);
      failures++;
      handlers.connection({ state: 'disconnected', reason: (error as Error).message });
      await sleep(Math.min(BACKOFF_MS.max, BACKOFF_MS.min * 2 ** (failures - 1)), signal);
    }
  }
}
