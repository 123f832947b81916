import { registration, roleOf, vmId, type ServiceAt } from './fixtures.js';
import { send } from './http.js';

export interface PreloadResult {
  n: number;
  seconds: number;
  perSecond: number;
}

/**
 * Registers VMs 0..n-1 through the API with `concurrency` requests in flight, as a swarm
 * coming up at once would. Every registration must succeed: a registry missing some of its
 * VMs would make every later figure wrong.
 */
export async function preload(url: string, n: number, concurrency: number, at?: (index: number) => ServiceAt): Promise<PreloadResult> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const index = next++;
      const id = vmId(index);
      const answer = await send(`${url}/registry/vms`, 'POST', registration(id, roleOf(index), at?.(index)));
      if (answer.status !== 201) {
        throw new Error(`preloading ${id} answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
      }
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const seconds = (performance.now() - began) / 1000;
  return { n, seconds, perSecond: n / seconds };
}
