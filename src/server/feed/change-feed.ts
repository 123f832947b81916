import type { FastifyBaseLogger } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { GoneError, UnavailableError } from '../../domain/errors.js';
import type { RegistryEvent, RegistryReset } from '../../domain/schemas/events.js';
import type { Role } from '../../domain/schemas/vm.js';
import { staleAfterEvent } from '../../domain/stale-after-event.js';
import { matchesFilter, type FeedListing, type ListFilter, type RegistryStore } from '../../store/store.js';
import { standingOf, standingsOf, type Standing } from './standings.js';

const START_RETRY_MS = 100;
const START_PATIENCE_MS = 30_000;

/**
 * An event with its Server-Sent Events frame, encoded once however many watchers get it, and
 * the VM as filters saw it before and after (undefined: not registered), so that a watcher
 * learns of a VM leaving its filter as well as entering it.
 */
export interface FeedEvent extends RegistryEvent {
  readonly frame: string;
  readonly before: Standing | undefined;
  readonly after: Standing | undefined;
}

/** What a blocking query or an event stream watches: a listing's filter, or one VM. */
export interface WatchFilter extends ListFilter {
  id?: string;
}

/** Whether a change can alter what a filter selects: the VM matched it before, or matches it after. */
export function concerns(change: FeedEvent, filter: WatchFilter): boolean {
  if (filter.id !== undefined && change.vm.id !== filter.id) return false;
  return (change.before !== undefined && matchesFilter(filter, change.before)) || (change.after !== undefined && matchesFilter(filter, change.after));
}

/** Why a blocking wait ended. `touched`: each VM a concerning change was about, and whether it was in the result at the index. */
export type WaitEnd =
  | { reason: 'changed'; touched: ReadonlyMap<string, boolean> }
  | { reason: 'reset' | 'timeout' | 'left' | 'forgotten' };

/**
 * The feed could not read the changes it had not yet delivered (they left the event log, or
 * the store is behind it): every watcher must list again, and changes go on after `revision`.
 */
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
  const data = JSON.stringify({ type: 'reset', revision } satisfies RegistryReset);
  return { type: 'reset', revision, frame: `event: reset\ndata: ${data}\n\n` };
}

/** The frame is encoded when a watcher first asks for it: with nobody watching, a change costs no encoding. */
function feedEvent(event: RegistryEvent, before: Standing | undefined): FeedEvent {
  let frame: string | undefined;
  const gone = event.type === 'deregistered' || event.type === 'reaped';
  return {
    ...event,
    before,
    after: gone ? undefined : standingOf(event.vm, staleAfterEvent(event, before)),
    get frame() {
      return (frame ??= sseFrame(event));
    },
  };
}

interface RevisionWaiter {
  after: number;
  wake(): void;
}

interface Waiter {
  after: number;
  filter: ListFilter;
  /** The first concerning change after `after` settles whether each VM was in the result at `after`. */
  touched: Map<string, boolean>;
  end(reason: WaitEnd['reason']): void;
}

/** Sets of watchers kept under a key (a role, an id), so that a change visits only those it may concern. */
class Buckets<K, T> {
  private readonly sets = new Map<K, Set<T>>();
  add(key: K, item: T): void {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    set.add(item);
  }
  delete(key: K, item: T): void {
    const set = this.sets.get(key);
    if (set?.delete(item) && set.size === 0) this.sets.delete(key);
  }
  get(key: K | undefined): ReadonlySet<T> {
    return (key !== undefined && this.sets.get(key)) || EMPTY;
  }
  *all(): IterableIterator<T> {
    for (const set of this.sets.values()) yield* set;
  }
}
const EMPTY: ReadonlySet<never> = new Set();

/** Recent changes kept for blocking queries that come back with an index the feed has passed. */
const RECENT = 10_000;
const ANY_ROLE = '*';

/**
 * The one reader of the event log per process. The store says "something changed"; the feed
 * reads the new events once, judges each against what it knew of the VM before (its standings,
 * listed at start), and hands it to the event streams whose filter it concerns and wakes the
 * blocking queries whose result it may change. Watchers are kept by role and by id, so a change
 * costs a visit to the watchers of its VM's role and id, not to every watcher.
 */
export class ChangeFeed {
  private delivered: number;
  private standings = new Map<string, Standing>();
  /** Every change after `recentFrom`, oldest first: between RECENT and twice as many. */
  private recent: FeedEvent[] = [];
  private recentFrom: number;
  private readonly listeners = new Set<FeedListener>();
  private readonly listenersByRole = new Buckets<string, FeedListener>();
  private readonly listenersById = new Buckets<string, FeedListener>();
  private readonly observers = new Set<FeedListener>();
  private readonly waiters = new Buckets<string, Waiter>();
  private readonly revisionWaiters = new Set<RevisionWaiter>();
  private waiting = 0;
  private watching = 0;
  private reading: Promise<void> | undefined;
  private again = false;
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly store: RegistryStore,
    private readonly log: FastifyBaseLogger | undefined,
    { entries, revision }: FeedListing,
  ) {
    this.delivered = revision;
    this.recentFrom = revision;
    this.standings = standingsOf(entries);
    this.unsubscribe = store.onChange(() => this.wake());
  }

  /**
   * Lists the registry once, so that the first change to each VM can be judged against what it
   * was; the feed goes on from the listing's revision.
   */
  static async start(store: RegistryStore, log?: FastifyBaseLogger): Promise<ChangeFeed> {
    // A PostgreSQL replica answers 503 while it loads its copy of the registry, which it may do
    // again right after opening (another replica's writes outran its first load): wait for it.
    for (let waited = 0; ; waited += START_RETRY_MS) {
      try {
        return new ChangeFeed(store, log, await store.feedListing());
      } catch (error) {
        if (!(error instanceof UnavailableError) || waited >= START_PATIENCE_MS) throw error;
        await sleep(START_RETRY_MS);
      }
    }
  }

  /** The newest revision handed to listeners. */
  get revision(): number {
    return this.delivered;
  }

  get counts(): { watchers: number; waiting: number } {
    return { watchers: this.watching, waiting: this.waiting };
  }

  /** Hands `listener` the changes that concern `filter` (a role, an id, both, or none: every change), and every reset. */
  listen(listener: FeedListener, filter: Pick<WatchFilter, 'role' | 'id'> = {}): () => void {
    const judged: FeedListener =
      filter.role === undefined && filter.id === undefined
        ? listener
        : (change) => (change.type === 'reset' || concerns(change, filter)) && listener(change);
    if (filter.id !== undefined) this.listenersById.add(filter.id, judged);
    else if (filter.role !== undefined) this.listenersByRole.add(filter.role, judged);
    else this.listeners.add(judged);
    this.watching++;
    return () => {
      if (filter.id !== undefined) this.listenersById.delete(filter.id, judged);
      else if (filter.role !== undefined) this.listenersByRole.delete(filter.role, judged);
      else this.listeners.delete(judged);
      this.watching--;
    };
  }

  /** As listen, for the server's own bookkeeping (metrics), which is no watcher and stays out of counts. */
  observe(observer: FeedListener): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * The recent change of revision `revision` with what the VM was before it, to judge a
   * resumed stream's backlog as live changes are judged; undefined when the feed no longer
   * holds it.
   */
  recentChange(revision: number): FeedEvent | undefined {
    const first = this.recent[0];
    if (!first || revision < first.revision) return undefined;
    const found = this.recent[this.firstAfter(revision - 1)];
    return found?.revision === revision ? found : undefined;
  }

  /**
   * Resolves once the registry is past `after`, when `timeoutMs` has gone by, or when the
   * signal aborts (the client left), whichever comes first, leaving no timer or waiter behind.
   */
  waitForRevisionAfter(after: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.delivered > after || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: RevisionWaiter = {
        after,
        wake: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', waiter.wake);
          this.revisionWaiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.wake, timeoutMs);
      signal.addEventListener('abort', waiter.wake, { once: true });
      this.revisionWaiters.add(waiter);
    });
  }

  /**
   * Resolves once a change after revision `after` concerns `filter`, when `timeoutMs` has gone
   * by, or when the signal aborts (the client left), whichever comes first, leaving no timer or
   * waiter behind. Changes the feed already delivered are looked up among the recent ones; an
   * index older than those ends the wait at once ("forgotten"), as the feed cannot tell.
   */
  waitForChange(after: number, filter: ListFilter, timeoutMs: number, signal: AbortSignal): Promise<WaitEnd> {
    if (signal.aborted) return Promise.resolve({ reason: 'left' });
    if (after < this.recentFrom) return Promise.resolve({ reason: 'forgotten' });
    const touched = new Map<string, boolean>();
    for (let i = this.firstAfter(after); i < this.recent.length; i++) this.touch(touched, this.recent[i], filter);
    if (touched.size > 0) return Promise.resolve({ reason: 'changed', touched });
    return new Promise((resolve) => {
      const key = filter.role ?? ANY_ROLE;
      const waiter: Waiter = {
        after,
        filter,
        touched,
        end: (reason) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', left);
          this.waiters.delete(key, waiter);
          this.waiting--;
          resolve(reason === 'changed' ? { reason, touched } : { reason });
        },
      };
      const left = () => waiter.end('left');
      const timer = setTimeout(() => waiter.end('timeout'), timeoutMs);
      signal.addEventListener('abort', left, { once: true });
      this.waiters.add(key, waiter);
      this.waiting++;
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
    for (const waiter of [...this.waiters.all()]) waiter.end('left');
    for (const waiter of this.revisionWaiters) waiter.wake();
  }

  /** Index of the first recent change with a revision above `revision`. */
  private firstAfter(revision: number): number {
    let low = 0;
    let high = this.recent.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.recent[middle].revision <= revision) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Notes a change that alters what `filter` answers: a VM in the answer before or after it, unless it stays in with nothing shown changed. */
  private touch(touched: Map<string, boolean>, change: FeedEvent, filter: ListFilter): void {
    const { before, after } = change;
    if (touched.has(change.vm.id)) return;
    const wasIn = before !== undefined && matchesFilter(filter, before);
    const isIn = after !== undefined && matchesFilter(filter, after);
    if (wasIn ? !isIn || before.shown !== after!.shown : isIn) touched.set(change.vm.id, wasIn);
  }

  private deliver(event: RegistryEvent): void {
    const { id } = event.vm;
    const change = feedEvent(event, this.standings.get(id));
    if (change.after) this.standings.set(id, change.after);
    else this.standings.delete(id);
    this.delivered = event.revision;
    this.recent.push(change);
    // Trimmed a batch at a time, so that a change costs no shift of the whole array.
    if (this.recent.length >= 2 * RECENT) this.recentFrom = this.recent.splice(0, RECENT).at(-1)!.revision;
    for (const observer of this.observers) observer(change);
    for (const listener of this.listeners) listener(change);
    for (const listener of this.listenersById.get(id)) listener(change);
    const roles = new Set<Role | undefined>([change.before?.role, change.after?.role]);
    for (const role of roles) for (const listener of this.listenersByRole.get(role)) listener(change);
    for (const key of [...roles, ANY_ROLE]) {
      for (const waiter of this.waiters.get(key)) {
        if (change.revision <= waiter.after) continue;
        this.touch(waiter.touched, change, waiter.filter);
        if (waiter.touched.size > 0) waiter.end('changed');
      }
    }
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
        for (const event of events) this.deliver(event);
        for (const waiter of this.revisionWaiters) if (this.delivered > waiter.after) waiter.wake();
        if (events.length < PAGE) return;
      }
    } catch (error) {
      this.log?.warn({ err: error }, 'reading the event log failed; retrying at the next change');
    }
  }

  /**
   * A feed stuck on a revision the log no longer holds would answer nothing forever, so it
   * lists the registry afresh, tells every watcher (filtered or not: none can tell what its
   * filter missed) to list again, and wakes every blocking query, whose answer is then a fresh
   * listing. This happens to a replica whose feed fell behind while others wrote more than the
   * retention, or over a store restored to an older revision.
   */
  private async resync(gone: GoneError): Promise<void> {
    const listing = await this.store.feedListing();
    this.log?.warn({ from: this.delivered, to: listing.revision, reason: gone.message }, 'the change feed lost its place in the event log; watchers are told to list again');
    this.delivered = listing.revision;
    this.recent = [];
    this.recentFrom = listing.revision;
    this.standings = standingsOf(listing.entries);
    const reset = feedReset(listing.revision);
    for (const observer of this.observers) observer(reset);
    for (const listener of this.listeners) listener(reset);
    for (const listener of this.listenersById.all()) listener(reset);
    for (const listener of this.listenersByRole.all()) listener(reset);
    for (const waiter of [...this.waiters.all()]) waiter.end('reset');
    for (const waiter of this.revisionWaiters) waiter.wake();
  }
}
