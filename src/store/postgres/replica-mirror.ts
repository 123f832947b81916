import { performance } from 'node:perf_hooks';
import type { Clock } from '../../domain/clock.js';
import { UnavailableError } from '../../domain/errors.js';
import type { RegistryEvent } from '../../domain/schemas/events.js';
import { isStale } from '../../domain/vm.js';
import { isoTimestamp } from '../../domain/vm-json.js';
import { MirrorReads } from '../mirror-reads.js';
import { RecentEvents } from '../recent-events.js';
import { DEFAULT_PAGE } from '../rules.js';
import type { MirrorLag } from '../store.js';
import type { Database } from './pool.js';
import { eventEntry, loadedEntry, type LoadTuple, type LoggedEvent } from './mirror-rows.js';
import { SQL } from './statements.js';
import type { StoreLog } from './store-log.js';
import { unavailableOr } from './unavailable.js';

/** How many of the newest applied events are kept in memory for the change feed. */
const RECENT_EVENTS = 256;
/** How often the estimate of the database clock is measured again. */
const CLOCK_REMEASURE_MS = 30_000;
/** After a failed read of the database, the next try. */
const RETRY_MS = 500;

/** A row of SQL.follow: the log's bounds, and one event (its fields null when there is none after the mirror). */
type FollowRow = { registry_revision: number; oldest: number | null } & (LoggedEvent | { revision: null });

/** Why reads are refused: the mirror is not known to be current. */
type Standing = MirrorLag['state'];

const REFUSALS: Record<Exclude<Standing, 'current'>, string> = {
  loading: 'this replica is loading its copy of the registry from PostgreSQL; retry shortly',
  disconnected:
    "the registry's PostgreSQL database is unavailable to this replica (its LISTEN connection is lost, so its copy of the registry may be behind); retry shortly",
  failing: "this replica cannot read PostgreSQL's event log to bring its copy of the registry up to date; retry shortly",
};

export interface ReplicaMirrorOptions {
  db: Database;
  staleAfterMs: number;
  eventRetention: number;
  /** Tests only: the store's fixed clock (see PostgresStoreOptions.clock). */
  clock?: Clock;
  log?: StoreLog;
  /** Called after changes reach the mirror (the store's onChange listeners). */
  applied: () => void;
}

/**
 * One replica's copy of the registry in memory (the SQLite store's Mirror), so that reads
 * never reach the database. It is loaded from one snapshot, then follows the event log in
 * revision order, woken by LISTEN; heartbeats, which make no events, arrive by NOTIFY with
 * the revision of the VM they touched. A lost LISTEN connection, or a mirror left behind the
 * event log's window, makes it load again; until it is current again reads answer 503.
 */
export class ReplicaMirror {
  reads: MirrorReads;
  /** The registry revision the mirror reflects. */
  private revision = 0;
  /** The newest revision this replica knows was committed. */
  private known = 0;
  /** Since when (monotonic ms) the replica has known of a revision it has not applied. */
  private behindSince: number | undefined;
  private standing: Exclude<Standing, 'disconnected'> = 'loading';
  /** Whether LISTEN is up: without it the replica cannot know what it misses. */
  private listening = true;
  private recent: RecentEvents;
  /**
   * Heartbeats of a VM whose change at that revision the mirror has not applied yet (or that
   * arrived during a load): applied with that change, dropped once a later one is applied.
   */
  private heldBeats = new Map<string, { revision: number; lastSeen: number }>();
  /** This replica's own writes, committed and answered ahead of the mirror: each applied once every revision before it is. */
  private ownWrites = new Map<number, LoggedEvent>();
  /** The database clock minus the monotonic clock, in ms. */
  private clockOffset = 0;
  private clockTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private work: Promise<void> = Promise.resolve();
  private following = false;
  /** Whether the first load is done: until then a round of following has nothing to follow from. */
  private started = false;
  private reloadWanted = false;
  private waiters: Array<{ revision: number; resolve: () => void }> = [];
  private closed = false;

  constructor(private readonly options: ReplicaMirrorOptions) {
    this.reads = this.emptyReads();
    this.recent = this.emptyRecent();
  }

  /** The database's time as this replica estimates it (see measureClock). */
  readonly now = (): number => this.options.clock?.now() ?? performance.now() + this.clockOffset;

  /** Loads the mirror, and keeps the clock estimate fresh; fails when the database cannot be read. */
  async start(): Promise<void> {
    await this.measureClock();
    // In turn with the rounds of following, so that a change heard meanwhile is read from the
    // log after the load: a round beside it would apply events to a mirror the load replaces.
    const loaded = this.work.then(() => this.load());
    this.work = loaded.catch(() => undefined);
    await loaded;
    this.clockTimer = setInterval(() => void this.measureClock().catch(() => undefined), CLOCK_REMEASURE_MS).unref();
  }

  /** The reads, when the mirror is current; else the 503 saying why not. */
  current(): MirrorReads {
    const standing = this.state();
    if (standing !== 'current') throw new UnavailableError(REFUSALS[standing]);
    return this.reads;
  }

  private state(): Standing {
    return this.listening ? this.standing : 'disconnected';
  }

  get appliedRevision(): number {
    return this.revision;
  }

  lag(): MirrorLag {
    const now = performance.now();
    return {
      revisions: Math.max(0, this.known - this.revision),
      ms: this.behindSince === undefined ? 0 : Math.round(now - this.behindSince),
      state: this.state(),
    };
  }

  /** The newest applied events after `since`, at most `limit`; undefined when memory does not reach back that far. */
  recentAfter(since: number, limit: number): RegistryEvent[] | undefined {
    return this.recent.after(since, limit);
  }

  /**
   * LISTEN heard of a change: the first revision its transaction logged (empty from replicas
   * of an earlier version). The mirror holds it once it is at that revision or past it, since
   * the mirror only ever stops between transactions (a load, a whole read of the log, one's own
   * single-change write); otherwise read the log.
   */
  changed(payload: string): void {
    const revision = Number(payload) || 0;
    if (revision > 0 && revision <= this.revision && this.standing !== 'loading') return;
    if (revision > this.known) this.known = revision;
    this.behindSince ??= performance.now();
    this.follow();
  }

  /** LISTEN heard of heartbeats: lines of '<revision> <ms> <id>' (a batch), or one such line (a replica of the previous version). */
  heartbeatHeard(payload: string): void {
    for (const line of payload.split('\n')) {
      const first = line.indexOf(' ');
      const second = line.indexOf(' ', first + 1);
      if (first < 0 || second < 0) continue;
      this.beat(line.slice(second + 1), Number(line.slice(0, first)), Number(line.slice(first + 1, second)));
    }
  }

  /**
   * A heartbeat of VM `id`, whose last change was `revision`, at `lastSeen`. Applied now when
   * the mirror holds that change; held until it does when it is ahead; dropped when a later
   * change is applied, since that change's lastSeen already includes it.
   */
  beat(id: string, revision: number, lastSeen: number): void {
    const entry = this.reads.mirror.get(id);
    if (this.standing !== 'loading' && entry?.revision === revision) {
      if (lastSeen > entry.lastSeen) {
        this.reads.seen(entry, lastSeen);
      }
      return;
    }
    if (this.standing === 'loading' || revision > this.revision) {
      const held = this.heldBeats.get(id);
      if (!held || revision > held.revision || (revision === held.revision && lastSeen > held.lastSeen)) this.heldBeats.set(id, { revision, lastSeen });
    }
  }

  /** The LISTEN connection is gone: what is sent until it is back never arrives, so reads stop. */
  disconnected(): void {
    this.behindSince ??= performance.now();
    this.listening = false;
  }

  /** LISTEN is back: heartbeats sent meanwhile are lost, so load afresh. */
  reconnected(): void {
    this.listening = true;
    this.reload();
  }

  /** Resolves once the mirror has reached `revision` (a write of this replica, acknowledged only then), or a read of the log failed. */
  reached(revision: number): Promise<void> {
    if (this.revision >= revision) return Promise.resolve();
    if (revision > this.known) this.known = revision;
    this.behindSince ??= performance.now();
    const wait = new Promise<void>((resolve) => this.waiters.push({ revision, resolve }));
    this.follow();
    return wait;
  }

  /**
   * One of this replica's own writes, committed: applied from the write's answer as soon as the
   * mirror holds every revision before it, so that acknowledging it needs no read of the log.
   * The revisions before it come from this replica's other writes or, woken by LISTEN, from
   * the log. Resolves once it is applied, or a read of the log failed.
   */
  wrote(event: LoggedEvent): Promise<void> {
    if (event.revision > this.revision) this.ownWrites.set(event.revision, event);
    this.applyOwnWrites();
    if (this.revision >= event.revision) return Promise.resolve();
    if (event.revision > this.known) this.known = event.revision;
    this.behindSince ??= performance.now();
    const wait = new Promise<void>((resolve) => this.waiters.push({ revision: event.revision, resolve }));
    // Without LISTEN no notification brings the revisions before it: read them now.
    if (!this.listening) this.follow();
    return wait;
  }

  /** Stops following; resolves once the round running now is over. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.clockTimer);
    clearTimeout(this.retryTimer);
    this.release(true);
    await this.work;
  }

  /** Loads again, after whatever runs now. */
  private reload(): void {
    this.reloadWanted = true;
    this.standing = 'loading';
    this.follow();
  }

  /** Runs one round of catching up (or loading) after the one running now; one more round covers every wake meanwhile. */
  private follow(): void {
    if (this.following || this.closed) return;
    this.following = true;
    this.work = this.work.then(async () => {
      this.following = false;
      if (this.closed) return;
      try {
        if (this.reloadWanted) await this.load();
        else if (this.started) await this.catchUp();
      } catch (error) {
        this.failed(error);
      }
    });
  }

  private failed(error: unknown): void {
    if (this.closed) return;
    this.options.log?.warn({ reason: (error as Error).message }, 'could not bring this replica\'s copy of the registry up to date; retrying');
    if (this.standing === 'current') this.standing = 'failing';
    // The writes waiting are committed: they are answered, and reads stay refused until the mirror has them.
    this.release(true);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.follow(), RETRY_MS).unref();
  }

  /**
   * One snapshot: the revision and every VM as of it (revisions are handed out in commit
   * order, so a snapshot holds exactly those up to its revision). LISTEN is on before it is
   * taken, so whatever commits after it is heard of and read from the log.
   */
  private async load(): Promise<void> {
    this.standing = 'loading';
    const client = await this.options.db.connect();
    let revision: number;
    let rows: LoadTuple[];
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      revision = (await client.query<{ value: number }>(SQL.revision)).rows[0].value;
      rows = (await client.query<LoadTuple>({ text: SQL.load, rowMode: 'array' })).rows as unknown as LoadTuple[];
      await client.query('COMMIT');
    } catch (error) {
      client.release(true);
      throw unavailableOr(error);
    }
    client.release();
    const reads = this.emptyReads();
    for (const row of rows) reads.mirror.set(loadedEntry(row));
    this.reads = reads;
    this.reloadWanted = false;
    this.recent = this.emptyRecent();
    this.revision = revision;
    if (revision > this.known) this.known = revision;
    const held = this.heldBeats;
    this.heldBeats = new Map();
    this.standing = 'current';
    this.started = true;
    for (const [id, beat] of held) this.beat(id, beat.revision, beat.lastSeen);
    this.applyOwnWrites();
    this.options.log?.info({ vms: rows.length, revision }, "loaded this replica's copy of the registry");
    // Whatever committed after the snapshot.
    await this.catchUp();
    // The change feed reads what the load skipped from the event log (or resets its watchers if the log no longer has it).
    this.options.applied();
  }

  /** Applies the events after the mirror's revision, a page at a time, until none is left. */
  private async catchUp(): Promise<void> {
    let applied = false;
    for (;;) {
      const from = this.revision;
      const { rows } = await this.options.db.query<FollowRow>(SQL.follow, [from, DEFAULT_PAGE]);
      const { registry_revision: current, oldest } = rows[0];
      if (current > this.known) this.known = current;
      // Own writes applied while the query ran may have taken the mirror past `from`: their events are skipped.
      const next = rows.find((row) => row.revision !== null && row.revision > this.revision)?.revision;
      // Behind the log's window (or a gap, which revisions handed out in commit order never leave; or a database that went back): load again.
      const behind = next === undefined ? rows[0].revision === null && oldest !== null && oldest > from + 1 : next !== this.revision + 1;
      if (behind || current < from) {
        this.options.log?.warn({ from: this.revision, oldest, current }, "this replica's copy of the registry fell behind the event log; loading it again");
        await this.load();
        return;
      }
      for (const row of rows) {
        if (row.revision === null || row.revision <= this.revision) continue;
        this.apply(row);
        applied = true;
      }
      if (rows.length < DEFAULT_PAGE) break;
    }
    if (this.standing === 'failing') this.standing = 'current';
    this.applyOwnWrites();
    if (this.revision >= this.known && this.state() === 'current') this.behindSince = undefined;
    this.release(false);
    if (applied) this.options.applied();
  }

  /** Applies this replica's own writes that continue from the mirror's revision; forgets those it already has. */
  private applyOwnWrites(): void {
    // A load replaces the mirror: they wait for it, and whichever it holds by then are dropped.
    if (this.standing === 'loading') return;
    let applied = false;
    for (let next = this.ownWrites.get(this.revision + 1); next; next = this.ownWrites.get(this.revision + 1)) {
      this.ownWrites.delete(next.revision);
      this.apply(next);
      applied = true;
    }
    for (const revision of this.ownWrites.keys()) if (revision <= this.revision) this.ownWrites.delete(revision);
    if (!applied) return;
    if (this.revision >= this.known && this.state() === 'current') this.behindSince = undefined;
    this.release(false);
    this.options.applied();
  }

  private apply(event: LoggedEvent): void {
    const { vm, type, revision, at } = event;
    const mirror = this.reads.mirror;
    const held = this.heldBeats.get(vm.id);
    if (held && held.revision <= revision) this.heldBeats.delete(vm.id);
    if (type === 'deregistered' || type === 'reaped') mirror.delete(vm.id);
    else mirror.set(eventEntry(event, Math.max(Date.parse(vm.lastSeen), held?.revision === revision ? held.lastSeen : 0)));
    this.recent.remember({ type, revision, at: isoTimestamp(at), vm: { ...vm, stale: isStale(vm, at, this.options.staleAfterMs) } });
    this.revision = revision;
    this.reads.changed();
  }

  /** Answers the writes waiting for revisions the mirror has reached (all of them when `all`). */
  private release(all: boolean): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (all || waiter.revision <= this.revision) waiter.resolve();
      else this.waiters.push(waiter);
    }
  }

  /**
   * The offset from the monotonic clock to the database's, read at the middle of one round
   * trip: off by at most half of it, plus the two clocks' drift until the next measurement.
   */
  private async measureClock(): Promise<void> {
    if (this.options.clock) return;
    const sent = performance.now();
    const { rows } = await this.options.db.query<{ now: number }>(SQL.clock);
    const received = performance.now();
    this.clockOffset = rows[0].now - (sent + received) / 2;
  }

  private emptyReads(): MirrorReads {
    return new MirrorReads({ now: this.now, staleAfterMs: this.options.staleAfterMs, revision: () => this.revision });
  }

  private emptyRecent(): RecentEvents {
    return new RecentEvents(Math.min(RECENT_EVENTS, this.options.eventRetention));
  }
}
