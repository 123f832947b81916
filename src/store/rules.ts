import { ForbiddenError, GoneError, PreconditionFailedError } from '../domain/errors.js';
import type { Vm } from '../domain/schemas/vm.js';
import type { VmRecord } from '../domain/vm.js';
import type { WriteOptions } from './store.js';

/** How many events the log keeps for watchers to resume from, unless configured. */
export const DEFAULT_EVENT_RETENTION = 10_000;
/** The most events one eventsSince answers, and the most transitions one sweep writes, unless asked otherwise. */
export const DEFAULT_PAGE = 1000;

/** What a write's preconditions look at of the VM it would change. */
export interface WriteTarget {
  revision: number;
  owner: string | null;
}

/** A write to an existing VM: only by its owner (when the caller is write-scoped), and only at the revision If-Match named. */
export function checkWrite(id: string, current: WriteTarget, options: WriteOptions): void {
  checkOwner(id, current.owner, options);
  if (options.ifRevision !== undefined && options.ifRevision !== current.revision) {
    throw new PreconditionFailedError(id, options.ifRevision, current.revision);
  }
}

/** A write-scoped caller (options.owner set) changes only the VMs its token registered. */
export function checkOwner(id: string, owner: string | null, options: Pick<WriteOptions, 'owner'>): void {
  if (options.owner !== undefined && owner !== options.owner) throw new ForbiddenError(id, options.owner);
}

/** A PUT that would create: If-Match names a revision a missing VM cannot have (0 says "none"), so it creates nothing. */
export function checkCreate(id: string, options: WriteOptions): void {
  if (options.ifRevision !== undefined) throw new PreconditionFailedError(id, options.ifRevision, 0);
}

/** Watching from a revision the registry has not reached: the watcher is following another registry, or one restored from a backup. */
export function checkNotAhead(since: number, current: number): void {
  if (since > current) {
    throw new GoneError(`revision ${since} is ahead of this registry (at ${current}); list again, then watch from its revision`);
  }
}

/** Watching from before the oldest event kept (`oldest` null: the log is empty, so it starts after `current`). */
export function checkRetained(since: number, oldest: number | null, current: number): void {
  const first = oldest ?? current + 1;
  if (since < first - 1) {
    throw new GoneError(
      `revision ${since} is older than the event log keeps (it starts after ${first - 1}); list again, then watch from its revision`,
    );
  }
}

/** A VM as a store answers it: the API's fields, the owner when it has one, the revision of its last change. */
export const recordOf = (vm: Vm, owner: string | null, revision: number): VmRecord => ({
  ...vm,
  ...(owner !== null && { owner }),
  revision,
});

/** The callbacks onChange registered, told after changes commit. */
export class ChangeListeners {
  private readonly listeners = new Set<() => void>();

  /** Answers the unsubscribe. */
  add(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(): void {
    for (const listener of this.listeners) listener();
  }
}
