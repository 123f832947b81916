import type { FastifyBaseLogger } from 'fastify';
import { GoneError } from '../../domain/errors.js';
import type { RegistryEvent, RegistryStore } from '../../store/store.js';

/** An event with its Server-Sent Events frame, encoded once however many watchers get it. */
export interface FeedEvent extends RegistryEvent {
  readonly frame: string;
}

/**
 * The feed could not read the changes it had not yet delivered (they left the event log, or
 * the store is behind it): every watcher must list again, and changes go on after `revision`.
 */
/** The data of a reset as the stream sends it (event `reset`, no `id:`). */
export interface ResetData {
  type: 'reset';
  /** List again: changes go on after this revision. */
  revision: number;
}

export interface FeedReset {
  readonly type: 'reset';
  readonly revision: number;
  readonly frame: string;
}

export type FeedChange = FeedEvent | FeedReset;
export type FeedListener = (change: FeedChange) => void;

const PAGE = 1000;

export function sseFrame(event: RegistryEvent): string {
  const data = JSON.stringify({ type: event.type, revision: event.revision, at: event.at, vm: event.vm });
  return `id: ${event.revision}\nevent: ${event.type}\ndata: ${data}\n\n`;
}

/**
 * No `id:` line: a client that ignores the reset and later resumes with the Last-Event-ID it
 * holds gets 410 and lists again, instead of silently carrying on past the changes it missed.
 */
export function feedReset(revision: number): FeedReset {
  const data = JSON.stringify({ type: 'reset', revision } satisfies ResetData);
  return { type: 'reset', revision, frame: `event: reset\ndata: ${data}\n\n` };
}

/** The frame is encoded when a watcher first asks for it: with nobody watching, a change costs no encoding. */
function feedEvent(event: RegistryEvent): FeedEvent {
  let frame: string | undefined;
  return {
    ...event,
    get frame() {
      return (frame ??= sseFrame(event));
    },
  };
}

interface Waiter {
  after: number;
  wake(): void;
}

/**
 * The one reader of the event log per process. The store says "something changed"; the feed
 * reads the new events once and hands each to every listener (SSE streams) and wakes the
 * blocking queries waiting for a revision, so a thousand watchers cost one query per change.
 */
export class ChangeFeed {
  private delivered: number;
  private readonly listeners = new Set<FeedListener>();
  private readonly observers = new Set<FeedListener>();
  private readonly waiters = new Set<Waiter>();
  private reading: Promise<void> | undefined;
  private again = false;
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly store: RegistryStore,
    private readonly log: FastifyBaseLogger | undefined,
    revision: number,
  ) {
    this.delivered = revision;
    this.unsubscribe = store.onChange(() => this.wake());
  }

  static async start(store: RegistryStore, log?: FastifyBaseLogger): Promise<ChangeFeed> {
    return new ChangeFeed(store, log, await store.revision());
  }

  /** The newest revision handed to listeners. */
  get revision(): number {
    return this.delivered;
  }

  get counts(): { watchers: number; waiting: number } {
    return { watchers: this.listeners.size, waiting: this.waiters.size };
  }

  listen(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** As listen, for the server's own bookkeeping (metrics), which is no watcher and stays out of counts. */
  observe(observer: FeedListener): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * Resolves once the registry is past `after`, when `timeoutMs` has gone by, or when the
   * signal aborts (the client left), whichever comes first, leaving no timer or waiter behind.
   */
  waitForRevisionAfter(after: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.delivered > after || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        after,
        wake: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', waiter.wake);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.wake, timeoutMs);
      signal.addEventListener('abort', waiter.wake, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Reads what is new; a wake during a read makes the read go round once more. */
  wake(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.readNew().finally(() => {
      this.reading = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  close(): void {
    this.unsubscribe();
    for (const waiter of this.waiters) waiter.wake();
  }

  private async readNew(): Promise<void> {
    try {
      for (;;) {
        let events: RegistryEvent[];
        try {
          events = await this.store.eventsSince(this.delivered, PAGE);
        } catch (error) {
          if (!(error instanceof GoneError)) throw error;
          await this.resync(error);
          continue;
        }
        for (const event of events) {
          const delivery = feedEvent(event);
          this.delivered = event.revision;
          for (const observer of this.observers) observer(delivery);
          for (const listener of this.listeners) listener(delivery);
        }
        for (const waiter of this.waiters) if (this.delivered > waiter.after) waiter.wake();
        if (events.length < PAGE) return;
      }
    } catch (error) {
      this.log?.warn({ err: error }, 'reading the event log failed; retrying at the next change');
    }
  }

  /**
   * A feed stuck on a revision the log no longer holds would answer nothing forever, so it
   * jumps to the store's revision, tells every watcher (filtered or not: none can tell what its
   * filter missed) to list again, and wakes every blocking query, whose answer is then a fresh
   * listing. This happens to a replica whose feed fell behind while others wrote more than the
   * retention, or over a store restored to an older revision.
   */
  private async resync(gone: GoneError): Promise<void> {
    const revision = await this.store.revision();
    this.log?.warn({ from: this.delivered, to: revision, reason: gone.message }, 'the change feed lost its place in the event log; watchers are told to list again');
    this.delivered = revision;
    const reset = feedReset(revision);
    for (const observer of this.observers) observer(reset);
    for (const listener of this.listeners) listener(reset);
    for (const waiter of this.waiters) waiter.wake();
  }
}
