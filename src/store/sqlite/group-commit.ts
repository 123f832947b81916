import type Database from 'better-sqlite3';

type Outcome = { ok: true; value: unknown; staged: Staged } | { ok: false; error: unknown };

/** What a change will do once its transaction commits: the revision it took last, and what it applies to memory. */
interface Staged {
  revision?: number;
  apply: Array<() => void>;
}

/**
 * The SQLite store's transactions and its revision counter. Changes that arrive together
 * (concurrent requests) run in one immediate transaction and share one COMMIT, the cost that
 * dominated a write. Each caller is answered only after that COMMIT, so a 2xx still means
 * committed, and what a change does to memory happens only then, so a rolled-back change is
 * never seen.
 */
export class GroupCommit {
  /** The committed registry revision. */
  private committedRevision: number;
  /** The last revision given to a change of the open transaction; written with its COMMIT. */
  private allocated = 0;
  /** What the change running now will do once its transaction commits. */
  private staged: Staged = { apply: [] };
  private batch: Array<{ change: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void }> = [];
  private readonly sql;

  /**
   * `eventRetention`: how many events the log keeps. `committed` runs after a COMMIT that
   * changed the registry, once its changes are applied.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly eventRetention: number,
    private readonly committed: () => void,
  ) {
    this.sql = {
      revision: db.prepare<[], { value: number }>(`SELECT value FROM registry_state WHERE key = 'revision'`),
      setRevision: db.prepare<[number]>(`UPDATE registry_state SET value = ? WHERE key = 'revision'`),
      trimEvents: db.prepare('DELETE FROM events WHERE revision <= ?'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      savepoint: db.prepare('SAVEPOINT change'),
      release: db.prepare('RELEASE change'),
      rollbackTo: db.prepare('ROLLBACK TO change'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
    this.committedRevision = this.readRevision();
  }

  get revision(): number {
    return this.committedRevision;
  }

  /** The revision as the file holds it: a read that fails if the database no longer answers. */
  readRevision(): number {
    return this.sql.revision.get()!.value;
  }

  /** The revision the change running now has reached: its last one, or the committed one if it took none. */
  get revisionSoFar(): number {
    return this.staged.revision ?? this.committedRevision;
  }

  /** The next revision, for the change running now. */
  nextRevision(): number {
    const revision = ++this.allocated;
    this.staged.revision = revision;
    return revision;
  }

  /** Runs `apply` once the change running now has committed; never if it rolls back. */
  afterCommit(apply: () => void): void {
    this.staged.apply.push(apply);
  }

  /** Runs one change in a transaction of its own and answers its result or throws its error. */
  write<T>(change: () => T): T {
    const [outcome] = this.commit([change]);
    if (!outcome.ok) throw outcome.error;
    return outcome.value as T;
  }

  /** Runs the change with whatever else arrives before the next turn of the event loop. */
  batched<T>(change: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.batch.push({ change, resolve: resolve as (value: unknown) => void, reject });
      if (this.batch.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Commits the changes waiting for their batch now. */
  flush(): void {
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    let outcomes: Outcome[];
    try {
      outcomes = this.commit(batch.map(({ change }) => change));
    } catch (error) {
      for (const { reject } of batch) reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? batch[i].resolve(outcome.value) : batch[i].reject(outcome.error)));
  }

  /**
   * Runs changes in one immediate transaction, each under its own savepoint so that a refused
   * change undoes only itself, with one COMMIT; the revision counter and the event log's trim
   * are written once for all. Only after the COMMIT are the changes applied and the revision
   * moved, and `committed` runs once. Throws, with nothing changed, only when the transaction
   * itself fails.
   */
  private commit(changes: ReadonlyArray<() => unknown>): Outcome[] {
    const outcomes: Outcome[] = [];
    this.allocated = this.committedRevision;
    try {
      this.sql.begin.run();
      for (const change of changes) {
        this.staged = { apply: [] };
        const allocatedBefore = this.allocated;
        this.sql.savepoint.run();
        try {
          const value = change();
          this.sql.release.run();
          outcomes.push({ ok: true, value, staged: this.staged });
        } catch (error) {
          this.sql.rollbackTo.run();
          this.sql.release.run();
          this.allocated = allocatedBefore;
          outcomes.push({ ok: false, error });
        }
      }
      if (this.allocated !== this.committedRevision) {
        this.sql.setRevision.run(this.allocated);
        // Never this commit's own events: a watcher current before it must be able to read all of
        // them even when they outnumber the retention (a large import); the next commit trims them.
        this.sql.trimEvents.run(Math.min(this.allocated - this.eventRetention, this.committedRevision));
      }
      this.sql.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.sql.rollback.run();
      throw error;
    } finally {
      this.staged = { apply: [] };
    }
    let changed = false;
    for (const outcome of outcomes) {
      if (!outcome.ok) continue;
      for (const apply of outcome.staged.apply) apply();
      if (outcome.staged.revision !== undefined) {
        this.committedRevision = outcome.staged.revision;
        changed = true;
      }
    }
    if (changed) this.committed();
    return outcomes;
  }
}
