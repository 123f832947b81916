import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { batchWriter, type WriteBatch } from './write-batch.js';

/** Writes the store's batches, one at a time: the next is given only once the last has settled. */
export interface Writer {
  /** Resolves once the batch is committed; rejects, with nothing written, when SQLite refused it. */
  write(batch: WriteBatch): Promise<void>;
  /** Throws why writes can no longer be made, if they cannot. */
  check(): void;
  close(): Promise<void>;
}

/** A SQLite error as the writer thread reports it: the message and SQLite's code. */
interface ThreadError {
  message: string;
  code?: string;
}

const rebuilt = ({ message, code }: ThreadError) => Object.assign(new Error(message), code === undefined ? {} : { code });

/**
 * Runs the statements and COMMIT of every batch on a thread of its own, with a connection of
 * its own: the event loop only decides the changes and answers once the thread says they are
 * committed. The thread also checkpoints the write-ahead log (see ./writer-thread.ts).
 */
export class ThreadWriter implements Writer {
  private readonly worker: Worker;
  private readonly exited: Promise<unknown>;
  private waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(file: string, checkpointIntervalMs: number) {
    this.worker = new Worker(new URL('./writer-thread.js', import.meta.url), { workerData: { file, checkpointIntervalMs } });
    // Idle, it holds nothing a process must stay up for; while a batch is out, it does (see write).
    this.worker.unref();
    this.worker.on('message', (reply: ThreadError | null) => {
      const waiting = this.waiting!;
      this.waiting = undefined;
      this.worker.unref();
      if (reply === null) waiting.resolve();
      else waiting.reject(rebuilt(reply));
    });
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.exited.then(() => this.fail(new Error('it exited')));
  }

  write(batch: WriteBatch): Promise<void> {
    this.check();
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.ref();
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
    this.waiting?.reject(this.failure);
    this.waiting = undefined;
  }
}

/** Writes on the store's own connection: for a database in memory, which no other connection can open. */
export class InlineWriter implements Writer {
  private readonly apply: (batch: WriteBatch) => void;

  constructor(db: Database.Database) {
    this.apply = batchWriter(db);
  }

  async write(batch: WriteBatch): Promise<void> {
    this.apply(batch);
  }

  check(): void {}

  async close(): Promise<void> {}
}
