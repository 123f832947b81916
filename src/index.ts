/**
 * The package entry for embedding the registry: the SDK, the store interface with both
 * stores, and the app factory. `vm-registry/client` is the SDK alone, without the server's
 * dependencies.
 */
export * from './client/index.js';
export type { Clock } from './domain/clock.js';
export { systemClock } from './domain/clock.js';
export type { EventType, ListFilter, RegistryEvent, RegistryStore } from './store/store.js';
export { openSqliteStore, type SqliteStoreOptions } from './store/sqlite/sqlite-store.js';
export { openPostgresStore, type PostgresStoreOptions } from './store/postgres/postgres-store.js';
export { buildApp, type AppOptions } from './server/app.js';
export { loadConfig, ConfigError, type ServerConfig, type Settings } from './server/config.js';
export { serve } from './server/serve.js';
export { TokenRegistry } from './server/http/tokens.js';
