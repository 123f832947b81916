import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { tempDir } from '../../../test/support/server-process.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import type { VmRow, WriteBatch } from './write-batch.js';
import { ThreadWriter } from './writer.js';

const dir = tempDir();
after(() => dir.remove());

const row = (id: string): VmRow => ({
  id,
  name: id,
  role: 'worker',
  status: 'running',
  address: '10.0.0.1',
  registered_by: 'test',
  services: null,
  metadata: null,
  registered_at: 1,
  last_seen: 1,
  revision: 1,
  stale_announced: 0,
  owner: null,
});
const registration = (epoch: number, id: string): WriteBatch => ({ epoch, ops: [{ kind: 'insert', row: row(id) }] });

function database(name: string): { file: string; ids: () => string[] } {
  const file = join(dir.path, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  for (const migration of SQLITE_MIGRATIONS) db.exec(migration);
  db.close();
  const ids = () => {
    const reader = new Database(file, { readonly: true });
    try {
      return reader.prepare<[], { id: string }>('SELECT id FROM vms ORDER BY id').all().map(({ id }) => id);
    } finally {
      reader.close();
    }
  };
  return { file, ids };
}

describe('SQLite writer thread', () => {
  it('commits batches in order, and refuses unwritten the rest of a failed batch’s epoch', async () => {
    const { file, ids } = database('writer.db');
    const writer = new ThreadWriter(file, 250);
    await writer.write(registration(0, 'a'));
    // The primary key refuses it: SQLite's error, with its code, reaches the caller.
    await assert.rejects(writer.write(registration(0, 'a')), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    // Decided before its caller heard of the failure: it may rest on what failed, so it is not written.
    await assert.rejects(writer.write(registration(0, 'b')), /not written: a change it was decided after failed/);
    await writer.write(registration(1, 'c'));
    await writer.close();
    assert.deepEqual(ids(), ['a', 'c']);
  });

  it('after it is closed, refuses to write', async () => {
    const { file } = database('closed.db');
    const writer = new ThreadWriter(file, 250);
    await writer.close();
    await assert.rejects(writer.write(registration(0, 'a')), /the store is closed/);
  });
});
