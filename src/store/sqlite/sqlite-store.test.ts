import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../domain/clock.js';
import { tempDir } from '../../../test/support/server-process.js';
import { aVm, registryStoreConformance } from '../conformance.js';
import { openSqliteStore, StoreOpenError } from './sqlite-store.js';

const dir = tempDir();
after(() => dir.remove());
let files = 0;

registryStoreConformance('SQLite', async ({ staleAfterMs, clock, eventRetention }) => {
  const store = openSqliteStore({ file: join(dir.path, `conformance-${files++}.db`), clock, staleAfterMs, eventRetention });
  return { store, advance: async (ms) => clock.advance(ms), cleanup: () => store.close() };
});

describe('SQLite store files', () => {
  const open = (file: string) => openSqliteStore({ file, clock: new ManualClock(), staleAfterMs: 1000 });

  it('creates the directory and file on first start, and reopens what it wrote', async () => {
    const file = join(dir.path, 'nested', 'deeper', 'registry.db');
    const store = open(file);
    await store.register(aVm());
    await store.close();
    assert.ok(existsSync(file));
    assert.equal(existsSync(`${file}-wal`), false, 'a clean close folds the WAL back into the file');
    const reopened = open(file);
    assert.equal((await reopened.get('vm-1'))?.name, 'billing-lt');
    await reopened.close();
  });

  it('refuses a file that is not a database, naming the file', () => {
    const file = join(dir.path, 'garbage.db');
    writeFileSync(file, 'this is not sqlite '.repeat(500));
    assert.throws(() => open(file), (error: Error) => error instanceof StoreOpenError && error.message.includes(file));
  });

  it('refuses a path it cannot create', () => {
    const blocker = join(dir.path, 'a-file');
    writeFileSync(blocker, '');
    assert.throws(() => open(join(blocker, 'registry.db')), StoreOpenError);
  });
});
