import type { RegistryStore } from '../../store/store.js';
import type { RegistryMetrics, StoreOperation } from './metrics.js';

/**
 * The store with every operation timed, and accepted heartbeats counted, for /metrics. Only
 * the routes and the sweeper see this one: a failing call is timed too, since slow failures
 * matter as much as slow successes.
 */
export function instrumentStore(store: RegistryStore, metrics: RegistryMetrics): RegistryStore {
  const timed =
    <A extends unknown[], R>(operation: StoreOperation, run: (...args: A) => Promise<R>) => {
      const timer = metrics.storeTimer(operation);
      return async (...args: A): Promise<R> => {
        const done = timer.start();
        try {
          return await run.apply(store, args);
        } finally {
          done();
        }
      };
    };
  const heartbeat = timed('heartbeat', store.heartbeat);
  return {
    kind: store.kind,
    staleAfterMs: store.staleAfterMs,
    register: timed('register', store.register),
    put: timed('put', store.put),
    get: timed('get', store.get),
    list: timed('list', store.list),
    feedListing: timed('list', store.feedListing),
    // The fast paths are timed as the operations they stand for.
    listJson: timed('list', store.listJson),
    getJson: timed('get', store.getJson),
    census: timed('census', store.census),
    ...(store.mirrorLag && { mirrorLag: () => store.mirrorLag!() }),
    update: timed('update', store.update),
    deregister: timed('deregister', store.deregister),
    import: timed('import', store.import),
    recordHealth: timed('recordHealth', store.recordHealth),
    // Every argument passed on: a wrapper that names them would silently drop one added later.
    heartbeat: async (...args) => {
      const beat = await heartbeat(...args);
      metrics.countHeartbeat();
      return beat;
    },
    sweep: timed('sweep', store.sweep),
    eventsSince: timed('eventsSince', store.eventsSince),
    onChange: (listener) => store.onChange(listener),
    revision: timed('revision', store.revision),
    count: timed('count', store.count),
    close: () => store.close(),
  };
}
