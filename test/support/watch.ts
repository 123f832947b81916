import { readSse } from '../../src/client/sse.js';

export interface ReceivedEvent {
  id: number;
  event: string;
  data: { type: string; revision: number; at: string; vm: { id: string; role: string; [key: string]: unknown } };
}

/**
 * A raw SSE watcher for tests: collects events as they arrive and lets a test wait for a
 * condition on them. Only the stream parser is shared with the SDK; reconnection is the
 * test's own business here, so that the server's resume logic is what gets tested.
 */
export class Watcher {
  readonly events: ReceivedEvent[] = [];
  status = 0;
  private readonly controller = new AbortController();
  private readonly waiters = new Set<() => void>();
  private done: Promise<void> = Promise.resolve();

  static async open(url: string, headers: Record<string, string> = {}): Promise<Watcher> {
    const watcher = new Watcher();
    const response = await fetch(url, { headers, signal: watcher.controller.signal });
    watcher.status = response.status;
    if (response.status !== 200) throw Object.assign(new Error(`HTTP ${response.status}: ${await response.text()}`), { status: response.status });
    watcher.done = (async () => {
      try {
        for await (const message of readSse(response.body!)) {
          watcher.events.push({ id: Number(message.id), event: message.event, data: JSON.parse(message.data) });
          for (const wake of watcher.waiters) wake();
        }
      } catch (error) {
        if (!watcher.controller.signal.aborted) throw error;
      }
    })();
    return watcher;
  }

  /** Resolves when `check` holds for the events so far; fails after `timeoutMs`. */
  async until(check: (events: ReceivedEvent[]) => boolean, timeoutMs = 5000): Promise<ReceivedEvent[]> {
    if (check(this.events)) return this.events;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out; got ${this.events.map((e) => `${e.event}:${e.data.vm?.id}@${e.id}`).join(', ')}`));
      }, timeoutMs);
      const wake = () => {
        if (!check(this.events)) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(this.events);
      };
      this.waiters.add(wake);
    });
  }

  close(): Promise<void> {
    this.controller.abort();
    return this.done.catch(() => undefined);
  }
}
