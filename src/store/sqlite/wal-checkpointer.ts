import { Worker } from 'node:worker_threads';

/**
 * The checkpointer thread's handle. The store's own connection stops checkpointing as it
 * commits (wal_autocheckpoint) except as a safety net far past the usual, should this thread
 * ever fall behind.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<unknown>;

  /** `onFailure` hears if the thread dies, so that the store can checkpoint as it commits again. */
  constructor(file: string, intervalMs: number, onFailure: (error: Error) => void) {
    this.worker = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData: { file, intervalMs } });
    // It holds nothing the process must wait for.
    this.worker.unref();
    this.worker.on('error', onFailure);
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
  }

  /** Closes the thread's connection and waits for the thread to end. */
  async stop(): Promise<void> {
    // Held while it ends, or a process with nothing else to do would exit under the caller's await.
    this.worker.ref();
    this.worker.postMessage('stop');
    await this.exited;
  }
}
