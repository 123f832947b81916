export { RegistryClient, type RegistryClientOptions } from './client.js';
export type { ConditionalOptions, EventsOptions, EventStream, ListOptions, RequestOptions, VersionedVm } from './calls.js';
export { isTransient, RegistryConfigError, RegistryError, RegistryUnreachableError } from './errors.js';
export type { KeepAlive, KeepAliveOptions, KeepAliveState, KeepAliveStateChange } from './keep-alive.js';
export type { Resync, WatchItem, WatchOptions, WatchStateChange } from './watch.js';
export * from './types.js';
