import pg from 'pg';
import type { StoreLog } from './store-log.js';
import { isUnavailable, unavailableOr } from './unavailable.js';

// Revisions are bigint; as JavaScript numbers they stay exact up to 2^53.
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format),
} as pg.CustomTypesConfig;

/** How every connection of a replica reaches the database, the pool's and the LISTEN one alike. */
export function connectionTo(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    types,
    application_name: 'vm-registry',
    // Notices a database that vanished without closing the connection (a dead host), eventually.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

export function openPool(connection: pg.ClientConfig, max: number, log: StoreLog | undefined): pg.Pool {
  const pool = new pg.Pool({
    ...connection,
    max,
    // A request waits at most this long for a connection, so an unreachable database is a prompt 503.
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // Idle connections die with the database; without a listener that would end the process.
  pool.on('error', (error) => log?.warn({ reason: error.message }, 'an idle PostgreSQL connection failed; the pool replaces it'));
  return pool;
}

/** The pool as the store uses it: a database that is away is an UnavailableError (a 503), whatever failed. */
export class Database {
  constructor(private readonly pool: pg.Pool) {}

  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>({ text, values, name });
    } catch (error) {
      throw unavailableOr(error);
    }
  }

  /**
   * Runs `work` in one transaction on one connection. Any failure rolls it back, which also
   * returns the revision it may have taken; a connection that failed leaves the pool.
   */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (isUnavailable(error)) broken = error as Error;
      else await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw unavailableOr(error);
    } finally {
      client.release(broken);
    }
  }

  /** A connection of its own, for work that is not one transaction of the store's (a snapshot, say). */
  async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw unavailableOr(error);
    }
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}
