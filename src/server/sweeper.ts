import type { FastifyBaseLogger } from 'fastify';
import type { RegistryStore } from '../store/store.js';

export interface SweeperOptions {
  /** How often to look; half a second keeps "stale" events within about a second of the threshold. */
  intervalMs: number;
  reapAfterMs?: number;
}

/**
 * Turns the passing of time into events: staleness is derived at read time, but watchers
 * need to hear when a VM crosses the line, and reaping needs someone to act.
 */
export function startSweeper(store: RegistryStore, options: SweeperOptions, log?: FastifyBaseLogger): { stop(): void } {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      // A full page means more are due: go again at once rather than a tick later.
      while ((await store.sweep({ reapAfterMs: options.reapAfterMs })) >= 1000);
    } catch (error) {
      log?.warn({ err: error }, 'sweep failed; trying again at the next tick');
    } finally {
      running = false;
    }
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
