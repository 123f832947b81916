import pg from 'pg';
import type { StoreLog } from './store-log.js';

/** The VMs are split into this many shards; each is checked by the one replica holding its lock. */
export const HEALTH_SHARDS = 64;
// The first key of every lock below (two-key advisory locks); the second is the shard, or MEMBER.
const LOCK_CLASS = 0x76_6d_72;
const MEMBER = HEALTH_SHARDS;

/**
 * Which VMs this replica health-checks, decided by PostgreSQL session advisory locks: shard
 * s = hash(vm id) mod 64 (hashOf) is checked by whoever holds lock (class, s), so never by two replicas
 * at once. Every checking replica also holds a shared "member" lock; counting its holders
 * gives the number of live checkers, and each takes its fair part, ceil(64 / members), giving
 * back any excess. A replica that dies loses its session and with it every lock at once; the
 * others take its shards at their next round, within one interval.
 */
export class PostgresHealthShares {
  private client: pg.Client | undefined;
  private shards = new Set<number>();

  constructor(
    private readonly url: string,
    private readonly log?: StoreLog,
  ) {}

  async refresh(): Promise<void> {
    try {
      const client = await this.connect();
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::integer AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted`,
        [LOCK_CLASS, MEMBER],
      );
      const fair = Math.ceil(HEALTH_SHARDS / Math.max(1, rows[0].n));
      for (const shard of [...this.shards].sort((x, y) => y - x)) {
        if (this.shards.size <= fair) break;
        await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, shard]);
        this.shards.delete(shard);
      }
      for (let shard = 0; shard < HEALTH_SHARDS && this.shards.size < fair; shard++) {
        if (this.shards.has(shard)) continue;
        const taken = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_CLASS, shard]);
        if (taken.rows[0].ok) this.shards.add(shard);
      }
    } catch (error) {
      // Without the session its locks are gone too: check nothing until a new one holds some.
      this.log?.warn({ reason: (error as Error).message }, 'health checks: lost the shard locks; reconnecting next round');
      this.drop();
    }
  }

  /** The checker owns VM v while hash(v) mod count is among the shards. */
  held(): { count: number; shards: number[] } {
    return { count: HEALTH_SHARDS, shards: [...this.shards] };
  }

  async close(): Promise<void> {
    const client = this.client;
    this.drop();
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({ connectionString: this.url, application_name: 'vm-registry health shards', connectionTimeoutMillis: 5000 });
    client.on('error', () => this.drop());
    await client.connect();
    await client.query('SELECT pg_advisory_lock_shared($1, $2)', [LOCK_CLASS, MEMBER]);
    this.client = client;
    return client;
  }

  private drop(): void {
    this.client?.end().catch(() => undefined);
    this.client = undefined;
    this.shards = new Set();
  }
}
