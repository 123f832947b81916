import type { FastifyBaseLogger } from 'fastify';
import type { RegistryStore } from '../../store/store.js';

export interface SweeperOptions {
  /** How often to look; half a second keeps "stale" events within about a second of the threshold. */
  intervalMs: number;
  reapAfterMs?: number;
  /**
   * No reaping this long after start. After an outage every VM looks long dead; they get one
   * stale window to heartbeat again before anything is removed for the registry's own absence.
   */
  reapGraceMs?: number;
}

/**
 * Turns the passing of time into events: staleness is derived at read time, but watchers
 * need to hear when a VM crosses the line, and reaping needs someone to act.
 */
export function startSweeper(store: RegistryStore, options: SweeperOptions, log?: FastifyBaseLogger): { stop(): void } {
  let running = false;
  const reapFrom = performance.now() + (options.reapGraceMs ?? 0);
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const reapAfterMs = performance.now() >= reapFrom ? options.reapAfterMs : undefined;
      // A full page means more are due: go again at once rather than a tick later.
      while ((await store.sweep({ reapAfterMs })) >= 1000);
    } catch (error) {
      log?.warn({ err: error }, 'sweep failed; trying again at the next tick');
    } finally {
      running = false;
    }
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
