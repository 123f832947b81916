import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { batchWriter, type WriteBatch } from './write-batch.js';

/**
 * Writes the store's batches in the order given. A batch may be given before the last has
 * committed: it was decided assuming that one commits, and fails if it does not.
 */
export interface Writer {
  /** Resolves once the batch is committed; rejects, with nothing of it written, when it was not. */
  write(batch: WriteBatch): Promise<void>;
  /** Throws why writes can no longer be made, if they cannot. */
  check(): void;
  close(): Promise<void>;
}

/** How the writer thread answers for one batch: null once committed, else SQLite's error. */
export type BatchOutcome = { message: string; code?: string } | null;

const rebuilt = ({ message, code }: Exclude<BatchOutcome, null>) => Object.assign(new Error(message), code === undefined ? {} : { code });

/**
 * Runs the statements and COMMIT of every batch on a thread of its own, with a connection of
 * its own: the event loop only decides the changes, hands them over without waiting, and
 * answers each caller once the thread says its batch is committed. The thread writes all the
 * batches waiting for it in one transaction, and checkpoints the write-ahead log
 * (see ./writer-thread.ts).
 */
export class ThreadWriter implements Writer {
  private readonly worker: Worker;
  private readonly exited: Promise<unknown>;
  /** The batches given and not yet answered for, oldest first. */
  private readonly waiting: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private failure: Error | undefined;

  constructor(file: string, checkpointIntervalMs: number) {
    this.worker = new Worker(new URL('./writer-thread.js', import.meta.url), { workerData: { file, checkpointIntervalMs } });
    // Idle, it holds nothing a process must stay up for; while batches are out, it does (see write).
    this.worker.unref();
    this.worker.on('message', (outcomes: BatchOutcome[]) => {
      for (const outcome of outcomes) {
        const { resolve, reject } = this.waiting.shift()!;
        if (outcome === null) resolve();
        else reject(rebuilt(outcome));
      }
      if (this.waiting.length === 0) this.worker.unref();
    });
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.exited.then(() => this.fail(new Error('it exited')));
  }

  write(batch: WriteBatch): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      if (this.waiting.push({ resolve, reject }) === 1) this.worker.ref();
      this.worker.postMessage(batch);
    });
  }

  check(): void {
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    if (this.failure) return;
    this.failure = new Error('the store is closed');
    this.worker.ref();
    this.worker.postMessage('stop');
    await this.exited;
  }

  private fail(cause: Error): void {
    this.failure ??= new Error(`the SQLite writer thread stopped (${cause.message}); restart vm-registry`, { cause });
    for (const { reject } of this.waiting.splice(0)) reject(this.failure);
  }
}

/** Writes on the store's own connection: for a database in memory, which no other connection can open. */
export class InlineWriter implements Writer {
  private readonly apply: (batches: readonly WriteBatch[]) => void;

  constructor(db: Database.Database) {
    this.apply = batchWriter(db);
  }

  async write(batch: WriteBatch): Promise<void> {
    this.apply([batch]);
  }

  check(): void {}

  async close(): Promise<void> {}
}
