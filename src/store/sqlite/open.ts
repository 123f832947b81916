import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { WalCheckpointer } from './wal-checkpointer.js';

/** How often the checkpointer thread folds the write-ahead log into the file. */
const CHECKPOINT_INTERVAL_MS = 250;
/**
 * Pages of write-ahead log after which a commit checkpoints on the event loop after all:
 * only reached if the checkpointer thread falls far behind (SQLite's default is 1000).
 */
const CHECKPOINT_SAFETY_NET_PAGES = 20_000;

/** Opens the file (creating its directory) with the store's pragmas, and brings its schema up to date. */
export function openDatabase(file: string): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    // In WAL mode NORMAL survives any process crash (kill -9 included): a commit is in the
    // OS before the call returns. Only an OS crash or power cut can lose the last commits.
    db.pragma('synchronous = NORMAL');
    // No full-file integrity check (it would read the whole file on every start): a file that
    // is not a database fails on the first read above, and the store then reads every VM row
    // into its mirror, which refuses a table it cannot read.
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SQLITE_MIGRATIONS.length) {
    throw new Error(`schema version ${version} is newer than this vm-registry understands (${SQLITE_MIGRATIONS.length}); upgrade vm-registry`);
  }
  db.transaction(() => {
    for (let next = version; next < SQLITE_MIGRATIONS.length; next++) {
      db.exec(SQLITE_MIGRATIONS[next]);
      db.pragma(`user_version = ${next + 1}`);
    }
  }).immediate();
}

/**
 * Folds the write-ahead log into the file from a thread of its own, so that commits on the event
 * loop never pay for a checkpoint; should the thread fail, commits checkpoint as SQLite usually does.
 */
export function startCheckpointing(db: Database.Database, file: string): WalCheckpointer {
  db.pragma(`wal_autocheckpoint = ${CHECKPOINT_SAFETY_NET_PAGES}`);
  return new WalCheckpointer(file, CHECKPOINT_INTERVAL_MS, () => {
    if (db.open) db.pragma('wal_autocheckpoint = 1000');
  });
}
