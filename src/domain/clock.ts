/** Milliseconds since the epoch. Injected so that tests can move time for staleness. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
