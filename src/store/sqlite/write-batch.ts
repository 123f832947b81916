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

/** Everything one COMMIT writes: the changes of every request that arrived together. */
export interface WriteBatch {
  ops: WriteOp[];
  /** The registry's revision after the batch, when it changes it. */
  revision?: number;
  /** Events up to this revision fall out of the log the batch appends to. */
  trimThrough?: number;
}

/**
 * Prepares the statements a batch needs on `db`, and answers the function that writes a
 * batch in one immediate transaction: all of it or, when SQLite refuses, none of it.
 */
export function batchWriter(db: Database.Database): (batch: WriteBatch) => void {
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
  return db.transaction(({ ops, revision, trimThrough }: WriteBatch) => {
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
  }).immediate;
}
