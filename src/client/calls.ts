import type { HeartbeatResult, ListQuery, Registration, RegistryEvent, RegistryReset, Role, Vm, VmList, VmUpdate } from './types.js';

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ConditionalOptions extends RequestOptions {
  /** Only write if the VM is still at this revision (its ETag); otherwise a 412 RegistryError. */
  ifMatch?: number;
}

/**
 * A blocking query: answer once a change after `index` (the `revision` of an earlier answer,
 * also sent as its X-Registry-Index) concerns this query's result, or with the unchanged
 * answer when `wait` is over (ms, or "30s", "5m"; default 60 s, at most 10 min). The
 * request's own timeout is stretched to cover the wait.
 */
export interface BlockingOptions {
  index?: number;
  wait?: number | string;
}

export interface ListOptions extends Omit<ListQuery, 'stale' | 'index' | 'wait'>, RequestOptions, BlockingOptions {
  /** true: only stale VMs; false: leave them out. */
  stale?: boolean;
}

export interface EventsOptions extends RequestOptions {
  /** Deliver events with a revision greater than this one (a 410 RegistryError if it has left the log). */
  since?: number;
  role?: Role;
  id?: string;
  /** A stream silent for this long (no event, no keep-alive comment) counts as dead. Default 45 s. */
  idleTimeout?: number;
}

/**
 * An open event stream. Iterate it; `close()` (or leaving the loop) ends the connection. A
 * `reset` item means changes were missed: list again (`watch` does so by itself).
 */
export interface EventStream extends AsyncIterable<RegistryEvent | RegistryReset> {
  close(): void;
}

/** A VM with the revision of its last change: pass it as `ifMatch` for a safe read-modify-write. */
export interface VersionedVm {
  vm: Vm;
  revision: number;
}

/**
 * The calls `watch` and `keepAlive` make. They take any client that answers them, so that
 * they need not import RegistryClient, which builds on them.
 */
export interface RegistryCalls {
  put(registration: Registration, options?: ConditionalOptions): Promise<VersionedVm & { created: boolean }>;
  update(id: string, changes: VmUpdate, options?: ConditionalOptions): Promise<Vm>;
  heartbeat(id: string, options?: RequestOptions): Promise<HeartbeatResult>;
  list(options?: ListOptions): Promise<VmList>;
  events(options?: EventsOptions): Promise<EventStream>;
}
