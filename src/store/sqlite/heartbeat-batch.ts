/**
 * Heartbeats accepted but not yet written to SQLite. A heartbeat changes nothing but lastSeen
 * and DESIGN.md lets it be less durable than a change ("a lost heartbeat costs nothing"), so
 * instead of one commit per heartbeat the store writes those of a whole window in one
 * transaction. Readers never wait for it: the store's mirror already holds the new lastSeen.
 */
export class HeartbeatBatch {
  private ids = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  /** `write` stores the current lastSeen of each id in one transaction, or throws. */
  constructor(
    private readonly windowMs: number,
    private readonly write: (ids: ReadonlySet<string>) => void,
  ) {}

  add(id: string): void {
    this.ids.add(id);
    this.schedule();
  }

  /** Writes every pending heartbeat now; if the write fails they stay pending and the error is thrown. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.ids.size === 0) return;
    const ids = this.ids;
    this.ids = new Set();
    try {
      this.write(ids);
    } catch (error) {
      for (const id of ids) this.ids.add(id);
      throw error;
    }
  }

  private schedule(): void {
    // Unref'd: pending heartbeats must not keep a finished process alive; close() flushes them.
    this.timer ??= setTimeout(() => {
      try {
        this.flush();
      } catch {
        // The database refused (busy, disk full): keep them for the next window. A change or
        // close() on the same database reports the error to a caller.
        this.schedule();
      }
    }, this.windowMs).unref();
  }
}
