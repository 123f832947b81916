export {
  RegistryClient,
  type ConditionalOptions,
  type EventsOptions,
  type EventStream,
  type ListOptions,
  type RegistryClientOptions,
  type RequestOptions,
  type VersionedVm,
} from './client.js';
export { isTransient, RegistryConfigError, RegistryError, RegistryUnreachableError } from './errors.js';
export type { KeepAlive, KeepAliveOptions, KeepAliveState, KeepAliveStateChange } from './keep-alive.js';
export type { Resync, WatchItem, WatchOptions, WatchStateChange } from './watch.js';
export * from './types.js';
