import type Database from 'better-sqlite3';
import type { VmRecord } from '../../domain/vm.js';
import type { EventType } from '../store.js';

/** A VM as the `vms` table holds it. */
export interface VmRow {
  id: string;
  name: string;
  role: VmRecord['role'];
  status: VmRecord['status'];
  address: string;
  registered_by: string;
  services: string | null;
  metadata: string | null;
  registered_at: number;
  last_seen: number;
  revision: number;
  stale_announced: 0 | 1;
  owner: string | null;
}

/**
 * One statement of a batch. The store decides every change against its mirror before it
 * writes, so these are what to write, never what to check: none can be refused for a reason
 * of the registry's (a row that is there, a precondition), only for one of the file's.
 */
export type WriteOp =
  | { kind: 'insert'; row: VmRow }
  | { kind: 'replace'; row: VmRow }
  | { kind: 'remove'; id: string }
  | { kind: 'event'; revision: number; type: EventType; at: number; id: string; json: string }
  | { kind: 'touch'; id: string; lastSeen: number };

/** The changes of every request that arrived together, decided against the batches before it. */
export interface WriteBatch {
  /**
   * Which run of batches it belongs to: a batch is decided assuming every batch given before
   * it commits, so when one fails, the others of its run must fail too (see writer.ts).
   */
  epoch: number;
  ops: WriteOp[];
  /** The registry's revision after the batch, when it changes it. */
  revision?: number;
  /** Events up to this revision fall out of the log the batch appends to. */
  trimThrough?: number;
}

/**
 * Prepares the statements batches need on `db`, and answers the function that writes batches
 * in order in one immediate transaction: all of them or, when SQLite refuses, none.
 */
export function batchWriter(db: Database.Database): (batches: readonly WriteBatch[]) => void {
  const insert = db.prepare<[VmRow]>(
    `INSERT INTO vms (id, name, role, status, address, registered_by, services, metadata, registered_at, last_seen, revision, stale_announced, owner)
     VALUES (@id, @name, @role, @status, @address, @registered_by, @services, @metadata, @registered_at, @last_seen, @revision, @stale_announced, @owner)`,
  );
  const replace = db.prepare<[VmRow]>(
    `UPDATE vms SET name = @name, role = @role, status = @status, address = @address, registered_by = @registered_by,
     services = @services, metadata = @metadata, last_seen = @last_seen, revision = @revision,
     stale_announced = @stale_announced WHERE id = @id`,
  );
  const remove = db.prepare<[string]>('DELETE FROM vms WHERE id = ?');
  const appendEvent = db.prepare<[number, EventType, number, string, string]>(
    'INSERT INTO events (revision, type, at, vm_id, vm) VALUES (?, ?, ?, ?, ?)',
  );
  const touch = db.prepare<[string, number]>(
    'INSERT INTO heartbeats (id, last_seen) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen',
  );
  const setRevision = db.prepare<[number]>(`UPDATE registry_state SET value = ? WHERE key = 'revision'`);
  const trimEvents = db.prepare<[number]>('DELETE FROM events WHERE revision <= ?');
  const writeOne = ({ ops, revision, trimThrough }: WriteBatch) => {
    for (const op of ops) {
      switch (op.kind) {
        case 'insert':
          insert.run(op.row);
          break;
        case 'replace':
          replace.run(op.row);
          break;
        case 'remove':
          remove.run(op.id);
          break;
        case 'event':
          appendEvent.run(op.revision, op.type, op.at, op.id, op.json);
          break;
        case 'touch':
          touch.run(op.id, op.lastSeen);
          break;
      }
    }
    if (revision !== undefined) setRevision.run(revision);
    if (trimThrough !== undefined) trimEvents.run(trimThrough);
  };
  return db.transaction((batches: readonly WriteBatch[]) => batches.forEach(writeOne)).immediate;
}
