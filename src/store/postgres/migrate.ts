import type pg from 'pg';
import { POSTGRES_MIGRATIONS } from './migrations.js';

// Any fixed number, the same in every replica: the lock that lets one replica at a time migrate.
const MIGRATION_LOCK = 0x76_6d_72_01;

/**
 * Brings the schema up to date in one transaction. Replicas starting together queue on an
 * advisory lock, so the first applies the migrations and the others find nothing left to do.
 */
export async function migrate(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS registry_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM registry_migrations');
    const version = rows[0].version ?? 0;
    if (version > POSTGRES_MIGRATIONS.length) {
      throw new Error(
        `schema version ${version} is newer than this vm-registry understands (${POSTGRES_MIGRATIONS.length}); upgrade vm-registry`,
      );
    }
    for (let next = version; next < POSTGRES_MIGRATIONS.length; next++) {
      await client.query(POSTGRES_MIGRATIONS[next]);
      await client.query('INSERT INTO registry_migrations (version) VALUES ($1)', [next + 1]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
