import type { EventType } from '../../domain/schemas/events.js';
import type { Vm } from '../../domain/schemas/vm.js';
import type { CheckedService } from '../../domain/service-health.js';
import type { WriteTarget } from '../rules.js';

/**
 * The statements the PostgreSQL store runs, and the shapes of their answers. The functions they
 * call (registry_log, registry_vm, registry_now, ...) are defined by ./migrations.ts.
 */

/** The channel registry_log() notifies after every change, and every replica LISTENs on. */
export const CHANGE_CHANNEL = 'vm_registry_changes';
/**
 * The channel registry_heartbeat_v2() tells every replica's mirror of one heartbeat on:
 * '<revision> <lastSeen ms> <id>'. Only replicas of the previous version still call it (during a
 * rolling upgrade), so replicas keep listening on it.
 */
export const HEARTBEAT_CHANNEL = 'vm_registry_heartbeats';
/**
 * The channel registry_heartbeats() tells of a batch on: lines of '<revision> <lastSeen ms> <id>'
 * joined by newlines. A channel of its own, not HEARTBEAT_CHANNEL: a replica of the previous
 * version reads everything after the second space as the id, so a batch sent there would reach
 * it as one heartbeat of a VM named by all the other lines, and its mirror would hold that
 * garbage forever. On this channel it hears nothing instead (see docs/postgres.md, upgrades).
 */
export const HEARTBEAT_BATCH_CHANNEL = 'vm_registry_heartbeat_batches';
/** The longest NOTIFY payload, in bytes: PostgreSQL refuses 8,000 and more. */
export const NOTIFY_PAYLOAD_MAX = 7999;

// Any fixed number, the same in every replica: whoever holds it this tick is the sweeper.
export const SWEEP_LOCK = 0x76_6d_72_02;

/** The VM as registry_vm() builds it: the API's fields but stale, which depends on when it is asked. */
export type StoredVm = Omit<Vm, 'stale'>;

/** A change as registry_log answers it (its revision, type, the VM as the event log holds it, and its owner), and when it happened. */
export interface LoggedRow {
  event: { revision: number; type: EventType; vm: StoredVm; owner: string | null };
  at: Date;
}

/** A locked row: what write preconditions check, and what a service's health carries over from. */
export interface LockedRow extends WriteTarget {
  address: string;
  services: CheckedService[] | null;
}

// Every write statement takes the same first parameters: $1 the fixed time (NULL: the
// database's), $2 the event retention.
const NOW = 'registry_now($1::timestamptz)';
const milliseconds = (parameter: string) => `${parameter}::double precision * interval '1 millisecond'`;
/** What every write answers: its logged change and the time the change took (see recordOf). */
const LOGGED = (kind: string, revision: string) => `registry_log(v, ${kind}, ${revision}, ${NOW}, $2) AS event, ${NOW} AS at`;

/** An update's lastSeen: only a move to running says the VM is alive; pausing or renaming a dead VM must not revive it. */
const UPDATED_LAST_SEEN = `CASE WHEN $5::text = 'running' THEN ${NOW} ELSE last_seen END`;

export const SQL = {
  // Every change locks its row before it takes a revision: an UPDATE that ran into a concurrent
  // change of its row would evaluate its SET list again, and take a second revision.
  lock: 'SELECT revision, owner, address, services FROM vms WHERE id = $1 FOR UPDATE',
  insert: `
    INSERT INTO vms AS v (id, name, role, status, address, registered_by, services, metadata, owner, registered_at, last_seen, revision)
    SELECT $3, $4, $5, $6, $7, $8, $9::json, $10::json, $11, coalesce($12, t.now), coalesce($13, t.now), registry_next_revision()
    FROM (SELECT ${NOW} AS now) t
    ON CONFLICT (id) DO NOTHING
    RETURNING ${LOGGED('$14', 'v.revision')}`,
  replace: `
    UPDATE vms AS v SET name = $4, role = $5, status = $6, address = $7, registered_by = $8, services = $9::json,
      metadata = $10::json, last_seen = ${NOW}, revision = registry_next_revision(), stale_announced = false
    WHERE id = $3
    RETURNING ${LOGGED("'updated'", 'v.revision')}`,
  update: `
    UPDATE vms AS v SET
      name = coalesce($4::text, name),
      status = coalesce($5::text, status),
      address = coalesce($6::text, address),
      services = coalesce($7::json, services),
      metadata = coalesce($8::json, metadata),
      last_seen = ${UPDATED_LAST_SEEN},
      -- staysStaleAfterUpdate (domain/stale-after-event.ts); the right-hand side reads the row before the update.
      stale_announced = stale_announced AND coalesce($5::text, status) = 'running' AND ${UPDATED_LAST_SEEN} = last_seen,
      revision = registry_next_revision()
    WHERE id = $3
    RETURNING ${LOGGED("'updated'", 'v.revision')}`,
  setServices: `
    UPDATE vms AS v SET services = $4::json, revision = registry_next_revision() WHERE id = $3
    RETURNING ${LOGGED("'updated'", 'v.revision')}`,
  remove: `
    DELETE FROM vms AS v WHERE id = $3
    RETURNING ${LOGGED("'deregistered'", 'registry_next_revision()')}`,
  // The rows an import replaces, locked in id order before it takes the revision counter, as a
  // heartbeat batch locks its own: otherwise each could hold a row the other waits for.
  lockForImport: 'SELECT 1 FROM vms WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE',
  removeForImport: 'DELETE FROM vms WHERE id = $1',
  heartbeats: 'SELECT seen, rev FROM registry_heartbeats($3::text[], $4::text[], $1::timestamptz, $2)',
  sweeper: 'SELECT pg_try_advisory_xact_lock($1) AS sweeper',
  // The due rows are locked first, skipping any a writer holds, so that the counter's lock is
  // always taken after the rows' as in every other write: no deadlock.
  announceStale: `
    WITH due AS MATERIALIZED (
      SELECT id FROM vms
      WHERE status = 'running' AND NOT stale_announced AND last_seen < ${NOW} - ${milliseconds('$3')}
      ORDER BY last_seen LIMIT $4
      FOR UPDATE SKIP LOCKED
    )
    UPDATE vms AS v SET stale_announced = true, revision = registry_next_revision() FROM due WHERE v.id = due.id
    RETURNING registry_log(v, 'stale', v.revision, ${NOW}, $2) AS event`,
  reap: `
    WITH due AS MATERIALIZED (
      SELECT id FROM vms
      WHERE stale_announced AND last_seen < ${NOW} - ${milliseconds('$3')}
      ORDER BY last_seen LIMIT $4
      FOR UPDATE SKIP LOCKED
    )
    DELETE FROM vms AS v USING due WHERE v.id = due.id
    RETURNING registry_log(v, 'reaped', registry_next_revision(), ${NOW}, $2) AS event`,
  exists: 'SELECT 1 FROM vms WHERE id = $1',
  // Up to $3, the revision this replica's mirror has reached: its watchers never get ahead of its reads.
  events: `
    SELECT s.value AS registry_revision, (SELECT min(revision) FROM events) AS oldest,
      e.revision, e.type, registry_iso(e.at) AS at, e.vm
    FROM registry_state s
    LEFT JOIN LATERAL (SELECT * FROM events WHERE revision > $1 AND revision <= $3 ORDER BY revision LIMIT $2) e ON true
    WHERE s.key = 'revision'
    ORDER BY e.revision`,
  // What a replica's mirror applies: the events after its revision, whose they are, and where the log starts.
  follow: `
    SELECT s.value AS registry_revision, (SELECT min(revision) FROM events) AS oldest,
      e.revision, e.type, (extract(epoch FROM e.at) * 1000)::float8 AS at, e.vm, e.owner
    FROM registry_state s
    LEFT JOIN LATERAL (SELECT * FROM events WHERE revision > $1 ORDER BY revision LIMIT $2) e ON true
    WHERE s.key = 'revision'
    ORDER BY e.revision`,
  // A replica's mirror at start, in its own order (registeredAt ascending, then id descending) so that loading appends.
  load: `
    SELECT id, role, status, owner, revision, (extract(epoch FROM registered_at) * 1000)::float8,
      (extract(epoch FROM last_seen) * 1000)::float8, stale_announced::integer,
      name, address, registered_by, services::text, metadata::text
    FROM vms ORDER BY registered_at, id DESC`,
  /** The database clock, read to keep a replica's estimate of it. */
  clock: 'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
  revision: `SELECT value FROM registry_state WHERE key = 'revision'`,
};
