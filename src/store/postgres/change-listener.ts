import pg from 'pg';
import type { StoreLog } from './store-log.js';
import { CHANGE_CHANNEL, HEARTBEAT_BATCH_CHANNEL, HEARTBEAT_CHANNEL } from './statements.js';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

/** What the listener tells its replica. */
export interface ListenerHandlers {
  /** A change committed: the payload registry_log sent (the first revision its transaction logged). */
  changed(payload: string): void;
  /** Heartbeats committed: the payload registry_heartbeats (or, from a replica of the previous version, registry_heartbeat_v2) sent. */
  heartbeat(payload: string): void;
  /** The connection is gone: notifications sent from now until `restored` are never delivered. */
  lost(): void;
  /** Listening again, after a loss. */
  restored(): void;
}

/**
 * The LISTEN side of change notification: one dedicated connection per process (a pooled one
 * would be handed to queries). Writes NOTIFY inside their transaction, so every replica hears
 * of a change once it commits, in commit order. When the connection is lost it says so and
 * reconnects by itself, and then says so again, since what was sent while it was away was
 * never delivered to it.
 */
export class ChangeListener {
  private client: pg.Client | undefined;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly config: pg.ClientConfig,
    private readonly handlers: ListenerHandlers,
    private readonly log: StoreLog | undefined,
  ) {}

  /** Connects and listens; fails if the database cannot be reached now. */
  static async start(config: pg.ClientConfig, handlers: ListenerHandlers, log?: StoreLog): Promise<ChangeListener> {
    const listener = new ChangeListener(config, handlers, log);
    await listener.connect();
    return listener;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.config);
    // Without an error listener a lost connection would crash the process.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    client.on('notification', ({ channel, payload = '' }) =>
      channel === CHANGE_CHANNEL ? this.handlers.changed(payload) : this.handlers.heartbeat(payload),
    );
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}; LISTEN ${HEARTBEAT_BATCH_CHANNEL}; LISTEN ${HEARTBEAT_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
  }

  private lost(client: pg.Client, error?: Error): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    this.log?.warn({ reason: error?.message }, 'lost the PostgreSQL LISTEN connection; this replica answers 503 until it is back and has reloaded');
    void client.end().catch(() => undefined);
    this.handlers.lost();
    this.retry();
  }

  private retry(): void {
    this.timer = setTimeout(async () => {
      try {
        await this.connect();
      } catch {
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        if (!this.closed) this.retry();
        return;
      }
      if (this.closed) return;
      this.retryMs = RETRY_MIN_MS;
      this.log?.info({}, 'PostgreSQL LISTEN connection restored; reloading this replica\'s copy of the registry');
      this.handlers.restored();
    }, this.retryMs);
    this.timer.unref();
  }
}
