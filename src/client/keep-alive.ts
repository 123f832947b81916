import { parseDuration } from '../domain/duration.js';
import type { RegistryCalls } from './calls.js';
import { isTransient, RegistryError } from './errors.js';
import { backoffDelay, jittered, sleep, type Backoff } from './timing.js';
import type { Registration, Vm } from './types.js';

/**
 * - `registering`: the PUT is on its way (at start, and after the registry lost the entry);
 * - `alive`: the last PUT or heartbeat succeeded;
 * - `retrying`: the last attempt failed for a reason that may pass (registry down, 5xx);
 * - `stopped`: the keeper ended, on abort or on an error retrying cannot fix (see `error`).
 */
export type KeepAliveState = 'registering' | 'alive' | 'retrying' | 'stopped';

export interface KeepAliveStateChange {
  state: KeepAliveState;
  previous: KeepAliveState;
  /** The failure behind `retrying`, or behind a `stopped` that was not asked for. */
  error?: Error;
  /** The entry as the registry last returned it from a PUT. */
  vm?: Vm;
}

export interface KeepAliveOptions {
  /** Time between heartbeats: ms, or "2m", "90s". Default 2m, well inside the 5m stale window. */
  interval?: number | string;
  /** Spread each wait by ±this fraction of the interval. Default 0.1. */
  jitter?: number;
  /** Retry delays while the registry is unreachable. Default 1 s doubling to 30 s (never above interval). */
  backoff?: Partial<Backoff>;
  /** Abort to stop the keeper. */
  signal?: AbortSignal;
  /** On abort, PATCH the VM to status "stopped" so that discovery drops it at once. Default false. */
  stopOnAbort?: boolean;
  onStateChange?: (change: KeepAliveStateChange) => void;
}

export interface KeepAlive {
  readonly state: KeepAliveState;
  /** The entry as last registered. */
  readonly vm: Vm | undefined;
  /** Stops the keeper (as aborting the signal would) and waits until it has ended. */
  stop(): Promise<void>;
  /** Settles when the keeper ends: resolves after an abort, rejects on an unrecoverable error. */
  readonly done: Promise<void>;
}

const DEFAULT_INTERVAL = 2 * 60_000;

function intervalMs(value: number | string | undefined): number {
  if (value === undefined) return DEFAULT_INTERVAL;
  const ms = typeof value === 'number' ? value : parseDuration(value);
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new RangeError(`keepAlive interval must be a positive duration such as 2m or 120000 (got ${JSON.stringify(value)})`);
  }
  return ms;
}

export function startKeepAlive(client: RegistryCalls, registration: Registration, options: KeepAliveOptions = {}): KeepAlive {
  const interval = intervalMs(options.interval);
  const jitter = options.jitter ?? 0.1;
  const backoff: Backoff = {
    min: options.backoff?.min ?? Math.min(1000, interval),
    max: Math.min(options.backoff?.max ?? 30_000, interval),
  };
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;

  let state: KeepAliveState = 'registering';
  let vm: Vm | undefined;
  const change = (next: KeepAliveState, error?: Error) => {
    if (next === state && next !== 'retrying') return;
    const previous = state;
    state = next;
    options.onStateChange?.({ state: next, previous, ...(error && { error }), ...(vm && { vm }) });
  };

  const run = async () => {
    let registered = false;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!registered) {
          change('registering');
          vm = (await client.put(registration, { signal })).vm;
          registered = true;
        } else {
          await client.heartbeat(registration.id, { signal });
        }
        failures = 0;
        change('alive');
        await sleep(jittered(interval, jitter), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof RegistryError && error.statusCode === 404) {
          // The registry lost or reaped the entry: put it back straight away.
          registered = false;
          continue;
        }
        if (!isTransient(error)) {
          change('stopped', error as Error);
          throw error;
        }
        failures++;
        change('retrying', error as Error);
        await sleep(backoffDelay(failures, backoff), signal);
      }
    }
    if (options.stopOnAbort && registered) {
      // The keeper's own signal is spent; the client's timeout bounds this last call.
      await client.update(registration.id, { status: 'stopped' }).catch(() => undefined);
    }
    change('stopped');
  };

  const done = run();
  // `done` is also returned; this keeps an unobserved failure from crashing the process.
  done.catch(() => undefined);
  return {
    get state() {
      return state;
    },
    get vm() {
      return vm;
    },
    done,
    async stop() {
      controller.abort();
      await done.catch(() => undefined);
    },
  };
}
