import { registration, roleOf, vmId, type ServiceAt } from './fixtures.js';
import { send } from './http.js';

export interface PreloadResult {
  n: number;
  seconds: number;
  perSecond: number;
}

/**
 * Registers VMs 0..n-1 with `concurrency` registrations in flight, as a swarm coming up at
 * once would, each through `registerOne`, which must throw when one fails: a registry missing
 * some of its VMs would make every later figure wrong.
 */
export async function preloadWith(n: number, concurrency: number, registerOne: (index: number) => Promise<void>): Promise<PreloadResult> {
  let next = 0;
  const worker = async () => {
    while (next < n) await registerOne(next++);
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const seconds = (performance.now() - began) / 1000;
  return { n, seconds, perSecond: n / seconds };
}

/** Preloads our registry through its API, services where `at` says, with `token` when auth is on. */
export function preload(url: string, n: number, concurrency: number, at?: (index: number) => ServiceAt, token?: string): Promise<PreloadResult> {
  return preloadWith(n, concurrency, async (index) => {
    const id = vmId(index);
    const answer = await send(`${url}/registry/vms`, 'POST', registration(id, roleOf(index), at?.(index)), { token });
    if (answer.status !== 201) {
      throw new Error(`preloading ${id} answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
    }
  });
}
