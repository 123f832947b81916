import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * Runs in a worker thread of its own (see WalCheckpointer): folds the write-ahead log back
 * into the database file, the copy and fsync that otherwise stalled the event loop on every
 * thousandth page a change wrote. A PASSIVE checkpoint never waits for the writer, nor the
 * writer for it.
 */
const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { fileMustExist: true });
const timer = setInterval(() => db.pragma('wal_checkpoint(PASSIVE)'), intervalMs);
parentPort!.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
