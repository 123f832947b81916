import type { ServerResponse } from 'node:http';
import { GoneError } from '../../domain/errors.js';
import type { RegistryStore } from '../../store/store.js';
import type { RegistryEvent } from '../../domain/schemas/events.js';
import { concerns, feedReset, sseFrame, type ChangeFeed, type FeedChange, type FeedReset, type WatchFilter } from './change-feed.js';

export type StreamFilter = Pick<WatchFilter, 'role' | 'id'>;

/** A watcher that cannot keep up is dropped past this much unsent data; it resumes with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const PAGE = 1000;

/**
 * One SSE watcher. It listens to the feed before reading its backlog, holding live events
 * back until the backlog is out, and sends each revision at most once and in order, so that
 * a resume neither skips nor repeats an event. When the feed resets, the watcher gets the
 * reset, filters or not, and then the changes after it.
 */
export class EventStream {
  private lastSent: number;
  private held: FeedChange[] | undefined = [];
  private response: ServerResponse | undefined;
  private readonly stopListening: () => void;

  private constructor(
    private readonly filter: StreamFilter,
    since: number,
    private readonly feed: ChangeFeed,
    private readonly onEnd: (stream: EventStream) => void,
  ) {
    this.lastSent = since;
    this.stopListening = feed.listen((change) => (this.held ? this.hold(change) : this.send(change)), filter);
  }

  /**
   * Opens a stream from `since` (exclusive). Fails, before anything is written, with the
   * store's GoneError when that revision is no longer in the log. Without `since` it starts at
   * the feed's revision and has no backlog: what the feed has yet to read, it delivers.
   */
  static async open(
    store: RegistryStore,
    feed: ChangeFeed,
    options: { since?: number; filter: StreamFilter; onEnd: (stream: EventStream) => void },
  ): Promise<{ stream: EventStream; backlog: RegistryEvent[] }> {
    const since = options.since ?? feed.revision;
    const stream = new EventStream(options.filter, since, feed, options.onEnd);
    if (options.since === undefined) return { stream, backlog: [] };
    try {
      return { stream, backlog: await store.eventsSince(since, PAGE) };
    } catch (error) {
      stream.stopListening();
      throw error;
    }
  }

  get revision(): number {
    return this.lastSent;
  }

  /** Takes over the response: sends the backlog, then whatever the feed held meanwhile, then live. */
  async attach(response: ServerResponse, store: RegistryStore, backlog: RegistryEvent[]): Promise<void> {
    this.response = response;
    response.on('close', () => this.end());
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Tells nginx-like proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    response.write(`retry: 2000\n: watching from revision ${this.lastSent}\n\n`);
    let page = backlog;
    try {
      while (page.length > 0 && this.response && this.held?.[0]?.type !== 'reset') {
        for (const event of page) this.send({ ...event, frame: sseFrame(event) }, this.wants(event));
        page = page.length === PAGE ? await store.eventsSince(this.lastSent, PAGE) : [];
      }
    } catch (error) {
      if (!(error instanceof GoneError)) throw error;
      // The log moved on while the backlog was being sent: everything held is at or before the
      // feed's revision, so the watcher lists again and goes on from there.
      this.held = [feedReset(this.feed.revision)];
    }
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of held) this.send(event);
  }

  comment(text: string): void {
    this.response?.write(`: ${text}\n\n`);
  }

  end(): void {
    if (!this.response) return;
    const response = this.response;
    this.response = undefined;
    this.stopListening();
    this.onEnd(this);
    if (!response.writableEnded) response.end();
  }

  /** A reset makes what was held before it moot: the watcher lists again anyway. */
  private hold(change: FeedChange): void {
    if (change.type === 'reset') this.held = [change];
    else this.held!.push(change);
  }

  /**
   * Whether a backlog event is for this watcher, judged as the feed judges live ones (a VM
   * leaving the role counts) while the feed still holds the change; an older one by the VM
   * as the event shows it.
   */
  private wants(event: RegistryEvent): boolean {
    const judged = this.feed.recentChange(event.revision);
    if (judged) return concerns(judged, this.filter);
    return (this.filter.role === undefined || event.vm.role === this.filter.role) && (this.filter.id === undefined || event.vm.id === this.filter.id);
  }

  /** Live changes come from the feed already filtered; `wanted` false only moves the stream past a backlog event. */
  private send(change: FeedReset | (RegistryEvent & { readonly frame: string }), wanted = true): void {
    if (!this.response) return;
    if (change.type === 'reset') {
      // May move back, over a store restored to an older revision: changes go on from there.
      this.lastSent = change.revision;
    } else {
      if (change.revision <= this.lastSent) return;
      this.lastSent = change.revision;
      if (!wanted) return;
    }
    this.response.write(change.frame);
    if (this.response.writableLength > MAX_BUFFERED_BYTES) this.end();
  }
}
