import type { ServerResponse } from 'node:http';
import type { RegistryEvent, RegistryStore } from '../../store/store.js';
import { sseFrame, type ChangeFeed, type FeedEvent } from './change-feed.js';

export interface StreamFilter {
  role?: string;
  id?: string;
}

/** A watcher that cannot keep up is dropped past this much unsent data; it resumes with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const PAGE = 1000;

/**
 * One SSE watcher. It listens to the feed before reading its backlog, holding live events
 * back until the backlog is out, and sends each revision at most once and in order, so that
 * a resume neither skips nor repeats an event.
 */
export class EventStream {
  private lastSent: number;
  private held: FeedEvent[] | undefined = [];
  private response: ServerResponse | undefined;
  private readonly stopListening: () => void;

  private constructor(
    private readonly filter: StreamFilter,
    since: number,
    feed: ChangeFeed,
    private readonly onEnd: (stream: EventStream) => void,
  ) {
    this.lastSent = since;
    this.stopListening = feed.listen((event) => (this.held ? this.held.push(event) : this.send(event)));
  }

  /**
   * Opens a stream from `since` (exclusive). Fails, before anything is written, with the
   * store's GoneError when that revision is no longer in the log.
   */
  static async open(
    store: RegistryStore,
    feed: ChangeFeed,
    options: { since?: number; filter: StreamFilter; onEnd: (stream: EventStream) => void },
  ): Promise<{ stream: EventStream; backlog: RegistryEvent[] }> {
    const since = options.since ?? feed.revision;
    const stream = new EventStream(options.filter, since, feed, options.onEnd);
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
    while (page.length > 0 && this.response) {
      for (const event of page) this.send({ ...event, frame: sseFrame(event) });
      page = page.length === PAGE ? await store.eventsSince(this.lastSent, PAGE) : [];
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

  private send(event: FeedEvent): void {
    if (!this.response || event.revision <= this.lastSent) return;
    this.lastSent = event.revision;
    if (this.filter.role !== undefined && event.vm.role !== this.filter.role) return;
    if (this.filter.id !== undefined && event.vm.id !== this.filter.id) return;
    this.response.write(event.frame);
    if (this.response.writableLength > MAX_BUFFERED_BYTES) this.end();
  }
}
