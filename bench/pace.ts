import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Fires `rate` calls a second until `deadline` (a performance.now() time), in 50 ms ticks.
 * Open loop: a slow answer does not slow the next calls, as a swarm of independent agents
 * would not wait for each other; and a tick that comes late (the load generator is busy too)
 * fires what the time since the start is owed, so the rate holds.
 */
export async function steady(rate: number, deadline: number, fire: () => void): Promise<void> {
  const began = performance.now();
  let fired = 0;
  while (performance.now() < deadline) {
    const owed = Math.floor(((performance.now() - began) / 1000) * rate);
    for (; fired < owed; fired++) fire();
    await sleep(50);
  }
}
