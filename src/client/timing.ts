/** Waits, but returns early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Spreads `ms` by ±fraction so that a swarm started together does not beat in lockstep. */
export function jittered(ms: number, fraction: number): number {
  return Math.max(0, Math.round(ms * (1 + fraction * (2 * Math.random() - 1))));
}

export interface Backoff {
  /** First retry delay in ms. */
  min: number;
  /** Longest delay in ms. */
  max: number;
}

/** Exponential backoff with jitter for the n-th consecutive failure (n ≥ 1). */
export function backoffDelay(failures: number, { min, max }: Backoff): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(failures - 1, 30));
  return Math.min(max, jittered(ceiling, 0.2));
}
