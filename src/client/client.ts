import { parseDuration } from '../domain/duration.js';
import { LIMITS } from '../domain/schemas/vm.js';
import { RegistryConfigError, RegistryError, RegistryUnreachableError } from './errors.js';
import { startKeepAlive, type KeepAlive, type KeepAliveOptions } from './keep-alive.js';
import { readSse } from './sse.js';
import type {
  BlockingOptions,
  ConditionalOptions,
  EventsOptions,
  EventStream,
  ListOptions,
  RegistryCalls,
  RequestOptions,
  VersionedVm,
} from './calls.js';
import type {
  Deleted,
  DiscoverQuery,
  HeartbeatResult,
  ImportedVm,
  ImportSummary,
  Registration,
  RegistryEvent,
  RegistryReset,
  Role,
  Vm,
  VmList,
  VmUpdate,
} from './types.js';
import { watchEvents, type WatchItem, type WatchOptions } from './watch.js';

export interface RegistryClientOptions {
  /** Base URL of the registry, such as http://infra-vm:3000. Default: $VERS_INFRA_URL. */
  url?: string;
  /** Bearer token. Default: $VERS_AUTH_TOKEN. */
  token?: string;
  /** A fetch implementation, for proxies or tests. Default: the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** Milliseconds to wait for a response (for event streams: for the headers). Default 15 s. */
  timeout?: number;
}

interface Call extends RequestOptions {
  /** Milliseconds before giving up on this call; default: the client's timeout. */
  timeout?: number;
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  ifMatch?: number;
}

const DEFAULT_TIMEOUT = 15_000;

/** Reads the registry URL as people write it: a scheme is optional, a trailing slash ignored. */
function baseUrl(url: string | undefined): string {
  const text = url?.trim();
  if (!text) {
    throw new RegistryConfigError(
      'no registry URL: set VERS_INFRA_URL (for example export VERS_INFRA_URL=http://infra-vm:3000) or pass one explicitly',
    );
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  try {
    const parsed = new URL(withScheme);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
    return parsed.href.replace(/\/+$/, '');
  } catch {
    throw new RegistryConfigError(`the registry URL "${text}" is not an http(s) URL`);
  }
}

/** The revision an ETag names: `"12"` → 12. */
const revisionOf = (response: Response) => Number(/\d+/.exec(response.headers.get('etag') ?? '')?.[0] ?? NaN);

/** A typed client for every registry endpoint. */
export class RegistryClient implements RegistryCalls {
  readonly url: string;
  private readonly token?: string;
  private readonly fetch: typeof globalThis.fetch;
  private readonly timeout: number;

  constructor(options: RegistryClientOptions = {}) {
    this.url = baseUrl(options.url ?? process.env.VERS_INFRA_URL);
    this.token = options.token ?? (process.env.VERS_AUTH_TOKEN || undefined);
    this.fetch = options.fetch ?? globalThis.fetch;
    this.timeout = options.timeout ?? DEFAULT_TIMEOUT;
  }

  /** POST /registry/vms: creates the entry; 409 if the id is taken (use `put` to replace). */
  async register(registration: Registration, options: RequestOptions = {}): Promise<Vm> {
    return (await this.call<Vm>('POST', '/registry/vms', { ...options, body: registration })).body;
  }

  /** PUT /registry/vms/:id: registers or replaces, keeping registeredAt. Idempotent. */
  async put(registration: Registration, options: ConditionalOptions = {}): Promise<VersionedVm & { created: boolean }> {
    const { body, response } = await this.call<Vm>('PUT', `/registry/vms/${encodeURIComponent(registration.id)}`, {
      ...options,
      body: registration,
    });
    return { vm: body, created: response.status === 201, revision: revisionOf(response) };
  }

  /** GET /registry/vms, newest registration first. */
  async list(options: ListOptions = {}): Promise<VmList> {
    const { role, status, stale, health, service, signal } = options;
    return (await this.call<VmList>('GET', '/registry/vms', { signal, ...this.blocking(options, { role, status, stale, health, service }) })).body;
  }

  /** GET /registry/vms/:id; a 404 RegistryError if it is not registered. */
  async get(id: string, options: RequestOptions = {}): Promise<Vm> {
    return (await this.getVersioned(id, options)).vm;
  }

  /** Like `get`, with the revision to pass as `ifMatch` to a later update. */
  async getVersioned(id: string, options: RequestOptions = {}): Promise<VersionedVm> {
    const { body, response } = await this.call<Vm>('GET', `/registry/vms/${encodeURIComponent(id)}`, options);
    return { vm: body, revision: revisionOf(response) };
  }

  /** PATCH /registry/vms/:id. Setting status to running also counts as a heartbeat. */
  async update(id: string, changes: VmUpdate, options: ConditionalOptions = {}): Promise<Vm> {
    return (await this.call<Vm>('PATCH', `/registry/vms/${encodeURIComponent(id)}`, { ...options, body: changes })).body;
  }

  /** DELETE /registry/vms/:id. */
  async deregister(id: string, options: ConditionalOptions = {}): Promise<Deleted> {
    return (await this.call<Deleted>('DELETE', `/registry/vms/${encodeURIComponent(id)}`, options)).body;
  }

  /** POST /registry/vms/:id/heartbeat: refreshes lastSeen; 404 if the registry lost the entry. */
  async heartbeat(id: string, options: RequestOptions = {}): Promise<HeartbeatResult> {
    return (await this.call<HeartbeatResult>('POST', `/registry/vms/${encodeURIComponent(id)}/heartbeat`, options)).body;
  }

  /**
   * GET /registry/discover/:role: running, non-stale VMs of the role, newest first; with health
   * checks on, none with a critical service unless `health: 'any'`.
   */
  async discover(role: Role, options: RequestOptions & BlockingOptions & DiscoverQuery = {}): Promise<VmList> {
    const { signal, health, service } = options;
    const path = `/registry/discover/${encodeURIComponent(role)}`;
    return (await this.call<VmList>('GET', path, { signal, ...this.blocking(options, { health, service }) })).body;
  }

  /**
   * Follows a discover with blocking queries: yields the answer at once, then each answer
   * that differs from the last one yielded, re-asking with the X-Registry-Index of the last
   * answer. The server answers a blocking query when a change concerns this role's result
   * (a VM entering, leaving or changing in it), or when `wait` is over with the same VMs,
   * which is not yielded; nor is a move of lastSeen alone, as heartbeats make no changes.
   * Ends when `signal` aborts; errors (a 429, an unreachable registry) are thrown.
   */
  async *discoverChanges(role: Role, options: RequestOptions & DiscoverQuery & Pick<BlockingOptions, 'wait'> = {}): AsyncGenerator<VmList> {
    const { signal, health, service, wait } = options;
    const path = `/registry/discover/${encodeURIComponent(role)}`;
    let index: number | undefined;
    let last: string | undefined;
    while (!signal?.aborted) {
      let answer: { body: VmList; response: Response };
      try {
        answer = await this.call<VmList>('GET', path, { signal, ...this.blocking({ index, wait }, { health, service }) });
      } catch (error) {
        if (signal?.aborted) return;
        throw error;
      }
      index = Number(answer.response.headers.get('x-registry-index'));
      const shown = JSON.stringify(answer.body.vms.map(({ lastSeen: _moves, ...vm }) => vm));
      if (shown === last) continue;
      last = shown;
      yield answer.body;
    }
  }

  /** The query and timeout of a call that may be a blocking query. */
  private blocking(options: BlockingOptions, query: Call['query']): Pick<Call, 'query' | 'timeout'> {
    if (options.index === undefined) return { query };
    const waitMs = typeof options.wait === 'number' ? options.wait : parseDuration(options.wait ?? `${LIMITS.defaultWaitMs}`);
    if (waitMs === undefined) throw new RegistryConfigError(`wait must be milliseconds or a duration such as 30s (got "${options.wait}")`);
    const wait = Math.min(waitMs, LIMITS.maxWaitMs);
    return { query: { ...query, index: options.index, wait: `${wait}ms` }, timeout: wait + this.timeout };
  }

  /**
   * POST /registry/import: creates or replaces full entries in one transaction, keeping
   * their registeredAt and lastSeen. All or nothing.
   */
  async import(vms: ImportedVm[], options: RequestOptions = {}): Promise<ImportSummary> {
    return (await this.call<ImportSummary>('POST', '/registry/import', { ...options, body: { vms } })).body;
  }

  /**
   * GET /registry/events: one connection to the event stream. Resolves once the server has
   * answered, so a refused connection or a 410 (revision left the log) throws here.
   * It does not reconnect; `watch` does.
   */
  async events(options: EventsOptions = {}): Promise<EventStream> {
    const { since, role, id, signal, idleTimeout = 45_000 } = options;
    const connection = new AbortController();
    const onAbort = () => connection.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let idle = false;
    let watchdog: NodeJS.Timeout | undefined;
    const resetWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        idle = true;
        connection.abort();
      }, idleTimeout);
    };
    const close = () => {
      clearTimeout(watchdog);
      signal?.removeEventListener('abort', onAbort);
      connection.abort();
    };

    let response: Response;
    try {
      ({ response } = await this.call('GET', '/registry/events', {
        signal: connection.signal,
        query: { since, role, id },
        stream: true,
      }));
    } catch (error) {
      close();
      throw error;
    }
    const url = this.url;
    resetWatchdog();
    return {
      close,
      async *[Symbol.asyncIterator]() {
        try {
          for await (const message of readSse(response.body!, resetWatchdog)) {
            if (message.data === '') continue;
            yield JSON.parse(message.data) as RegistryEvent | RegistryReset;
          }
        } catch (error) {
          if (signal?.aborted) return;
          if (idle) throw new RegistryUnreachableError(`the event stream from ${url} was silent for ${idleTimeout} ms`);
          throw new RegistryUnreachableError(`the event stream from ${url} broke: ${(error as Error).message}`, { cause: error });
        } finally {
          close();
        }
      },
    };
  }

  /**
   * Every change, for as long as the signal allows: reconnects after failures and resumes
   * after the last revision it delivered, so nothing is lost or repeated. When the server
   * no longer holds that revision (410), or the stream says it lost its place (`reset`), it
   * yields a `resync` item with the current VMs, then carries on from there.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<WatchItem> {
    return watchEvents(this, options);
  }

  /**
   * Keeps a VM registered: PUTs it, heartbeats every `interval` (with jitter), retries with
   * backoff while the registry is away, registers again when a heartbeat finds the entry
   * gone, and on abort can mark the VM stopped.
   */
  keepAlive(registration: Registration, options: KeepAliveOptions = {}): KeepAlive {
    return startKeepAlive(this, registration, options);
  }

  private async call<T>(method: string, path: string, call: Call & { stream?: boolean }): Promise<{ body: T; response: Response }> {
    const url = new URL(this.url + path);
    for (const [key, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: call.stream ? 'text/event-stream' : 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    if (call.ifMatch !== undefined) headers['if-match'] = `"${call.ifMatch}"`;

    // One controller for the caller's signal and the timeout, so that the timeout can be
    // dropped once an event stream's headers arrive while the caller's signal stays linked.
    const controller = new AbortController();
    const onAbort = () => controller.abort(call.signal?.reason);
    call.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timeout = call.timeout ?? this.timeout;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeout);
    const settle = () => {
      clearTimeout(timer);
      if (!call.stream) call.signal?.removeEventListener('abort', onAbort);
    };
    const failure = (error: unknown, what: string) => {
      if (call.signal?.aborted) return error;
      if (timedOut) {
        return new RegistryUnreachableError(`the registry at ${this.url} did not answer within ${timeout} ms`, { cause: error });
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      return new RegistryUnreachableError(`${what} (${why})`, { cause: error });
    };

    try {
      let response: Response;
      try {
        response = await this.fetch(url, {
          method,
          headers,
          body: call.body === undefined ? undefined : JSON.stringify(call.body),
          signal: controller.signal,
        });
      } catch (error) {
        throw failure(error, `cannot reach the registry at ${this.url}`);
      }
      if (!response.ok) throw await this.errorFrom(method, path, response);
      if (call.stream) return { body: undefined as T, response };
      try {
        return { body: (await response.json()) as T, response };
      } catch (error) {
        throw failure(error, `the registry at ${this.url} sent an unreadable answer to ${method} ${path}`);
      }
    } finally {
      settle();
    }
  }

  private async errorFrom(method: string, path: string, response: Response): Promise<RegistryError> {
    const text = await response.text().catch(() => '');
    let message: string | undefined;
    try {
      const parsed = JSON.parse(text) as { error?: unknown };
      if (typeof parsed.error === 'string') message = parsed.error;
    } catch {
      // Not JSON: a proxy's error page, for example. Fall back to the status line below.
    }
    message ??= `${method} ${path} answered ${response.status} ${response.statusText}`.trim();
    return new RegistryError(response.status, message);
  }
}
