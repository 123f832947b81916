import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { UsageError, type Command } from '../command.js';

/**
 * `vm-registry backup FILE`: a consistent copy of the SQLite database, taken while the
 * server keeps serving. VACUUM INTO reads one snapshot in a single read transaction, so
 * concurrent writes neither block it nor make it start over.
 */
export const backup: Command = {
  name: 'backup',
  summary: 'Copy the SQLite database to FILE while the server runs.',
  args: 'FILE',
  details:
    'To restore: stop the server, put the copy where REGISTRY_DB points (removing any ' +
    'registry.db-wal and registry.db-shm beside it), and start the server again. ' +
    'On PostgreSQL (DATABASE_URL) use pg_dump instead.',
  positionals: { min: 1, max: 1 },
  options: {
    db: { type: 'string', value: 'FILE', help: 'the database to copy (default: $REGISTRY_DB or ./data/registry.db)' },
  },
  async run(context) {
    if (process.env.DATABASE_URL) throw new UsageError('DATABASE_URL is set: back up PostgreSQL with pg_dump');
    const source = String(context.values.db ?? (process.env.REGISTRY_DB || './data/registry.db'));
    const target = resolve(context.positionals[0]);
    if (!existsSync(source)) throw new UsageError(`no database at ${source}`);
    if (existsSync(target)) throw new UsageError(`${target} already exists; choose a new file`);
    const db = new Database(source, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      db.prepare('VACUUM INTO ?').run(target);
    } finally {
      db.close();
    }
    const copy = new Database(target, { readonly: true });
    try {
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy at ${target} failed its integrity check: ${String(check)}`);
      const { n } = copy.prepare('SELECT count(*) AS n FROM vms').get() as { n: number };
      const { value } = copy.prepare(`SELECT value FROM registry_state WHERE key = 'revision'`).get() as { value: number };
      context.print(`backed up ${n} VMs at revision ${value} to ${target}`);
    } finally {
      copy.close();
    }
  },
};
