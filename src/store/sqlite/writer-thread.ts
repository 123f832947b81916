import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { batchWriter, type WriteBatch } from './write-batch.js';
import type { BatchOutcome } from './writer.js';

/**
 * Runs in the store's writer thread (see ./writer.ts): writes the batches the event loop
 * decided, every batch waiting in one transaction, and folds the write-ahead log back into
 * the file between them, so that neither the statements, the COMMIT nor the checkpoint's copy
 * and fsync hold up requests.
 */
const { file, checkpointIntervalMs } = workerData as { file: string; checkpointIntervalMs: number };
const port = parentPort!;
const db = new Database(file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
// Per connection, like the store's own: in WAL mode NORMAL survives any process crash.
db.pragma('synchronous = NORMAL');
const write = batchWriter(db);
/** Batches of this epoch and before were decided on a batch that failed: refused unwritten. */
let failedEpoch = -1;
let wroteSinceCheckpoint = false;
const checkpoints = setInterval(() => {
  if (!wroteSinceCheckpoint) return;
  wroteSinceCheckpoint = false;
  db.pragma('wal_checkpoint(PASSIVE)');
}, checkpointIntervalMs);

function stop(): void {
  clearInterval(checkpoints);
  db.close();
  port.close();
}

port.on('message', (first: WriteBatch | 'stop') => {
  const batches: WriteBatch[] = [];
  let stopping = first === 'stop';
  if (!stopping) batches.push(first as WriteBatch);
  for (let next; !stopping && (next = receiveMessageOnPort(port)); ) {
    if (next.message === 'stop') stopping = true;
    else batches.push(next.message as WriteBatch);
  }
  if (batches.length > 0) port.postMessage(commit(batches));
  if (stopping) stop();
});

function commit(batches: WriteBatch[]): BatchOutcome[] {
  const refused: BatchOutcome = { message: 'not written: a change it was decided after failed to commit', code: 'SQLITE_ABORT' };
  const outcomes = batches.map((batch) => (batch.epoch <= failedEpoch ? refused : null));
  const written = batches.filter((batch) => batch.epoch > failedEpoch);
  if (written.length === 0) return outcomes;
  try {
    write(written);
    wroteSinceCheckpoint = true;
  } catch (error) {
    const { message, code } = error as { message: string; code?: string };
    failedEpoch = written[written.length - 1].epoch;
    return outcomes.map((outcome) => outcome ?? { message, code });
  }
  return outcomes;
}
