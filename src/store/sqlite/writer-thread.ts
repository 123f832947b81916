import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { batchWriter, type WriteBatch } from './write-batch.js';

/**
 * Runs in the store's writer thread (see ./writer.ts): executes each batch the event loop
 * decided, and folds the write-ahead log back into the file between them, so that neither
 * the statements, the COMMIT nor the checkpoint's copy and fsync hold up requests.
 */
const { file, checkpointIntervalMs } = workerData as { file: string; checkpointIntervalMs: number };
const db = new Database(file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
// Per connection, like the store's own: in WAL mode NORMAL survives any process crash.
db.pragma('synchronous = NORMAL');
const write = batchWriter(db);
let wroteSinceCheckpoint = false;
const checkpoints = setInterval(() => {
  if (!wroteSinceCheckpoint) return;
  wroteSinceCheckpoint = false;
  db.pragma('wal_checkpoint(PASSIVE)');
}, checkpointIntervalMs);

parentPort!.on('message', (message: WriteBatch | 'stop') => {
  if (message === 'stop') {
    clearInterval(checkpoints);
    db.close();
    parentPort!.close();
    return;
  }
  try {
    write(message);
    wroteSinceCheckpoint = true;
    parentPort!.postMessage(null);
  } catch (error) {
    const { message: text, code } = error as { message: string; code?: string };
    parentPort!.postMessage({ message: text, code });
  }
});
