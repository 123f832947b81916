import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, errors, type Dispatcher } from 'undici';
import type { FailureReason } from './health-messages.js';
import type { HealthHostRule } from './health-hosts.js';

/** Bytes of a body read before the connection is dropped: a health answer needs none. */
const BODY_CAP = 512;
const OUTPUT_LENGTH = 120;
/** Connections open at once per target: checks of one target are seconds apart, so one is the rule. */
const CONNECTIONS_PER_TARGET = 4;
// No registry credentials, no cookies: only who is asking.
const HEADERS = { 'user-agent': 'vm-registry-health-check' };
/** Errors of a connection that closed before any answer: on a kept one, the target's keep-alive ran out as we asked. */
const CLOSED_UNANSWERED = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export interface Verdict {
  pass: boolean;
  output: string;
  failure?: FailureReason;
}

class Refused extends Error {
  readonly code = 'EHEALTHREFUSED';
}

class CheckTimeout extends Error {}

/**
 * One check, as undici's dispatch handler: settled once, by its answer, its error or its
 * deadline, whichever comes first. It keeps no response object and no body: the status
 * decides, and the body is only counted, so that one too long ends the connection.
 */
class Check implements Dispatcher.DispatchHandler {
  settled = false;
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private read = 0;
  private retried = false;

  constructor(
    readonly deadline: number,
    readonly options: Dispatcher.DispatchOptions,
    private readonly prober: Prober,
    private readonly resolve: (verdict: Verdict) => void,
  ) {}

  settle(verdict: Verdict): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(verdict);
  }

  /** Its deadline passed: the verdict is a timeout, and the connection, if it has one, is dropped. */
  expire(verdict: Verdict): void {
    this.settle(verdict);
    this.controller?.abort(new CheckTimeout());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Its deadline passed while it waited for a connection.
    if (this.settled) controller.abort(new CheckTimeout());
    else this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    // An interim answer (1xx) is followed by the final one, which undici reports here too.
    this.status = statusCode;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.read += chunk.length;
    if (this.read <= BODY_CAP) return;
    // Dropping the connection costs less than reading an endless body; the status is known.
    this.settle(byStatus(this.status));
    controller.abort(new Error('body cap reached'));
  }

  onResponseEnd(): void {
    this.settle(byStatus(this.status));
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const sent = this.controller !== undefined;
    if (sent && !this.retried && !this.settled && this.status === 0 && CLOSED_UNANSWERED.has((error as NodeJS.ErrnoException).code ?? '')) {
      // Asked again, once, on a new connection: the closed one is gone from undici's pool.
      this.retried = true;
      this.controller = undefined;
      this.read = 0;
      this.prober.send(this);
      return;
    }
    this.settle(this.prober.failure(error));
  }
}

/**
 * One GET per check through undici's dispatch API, bounded by the timeout from its start to
 * the last byte read. One undici Agent per checker thread keeps the connections to each
 * target open between checks; its connector resolves names through the SSRF rule, so the
 * rule judges the IP actually connected to. One timer ends every check that outlives its
 * deadline: checks start in order and share one timeout, so the earliest deadline is always
 * the oldest check's (undici's own headers and body timers, one per request, would only
 * repeat it).
 */
export class Prober {
  private readonly agent: Agent;
  /** In flight, oldest first; `head` skips those already settled. */
  private queue: Check[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly scheme: 'http' | 'https',
    private readonly timeoutMs: number,
    keepAliveMs: number,
    private readonly hosts: HealthHostRule,
  ) {
    // An Agent without the redirect interceptor never follows a redirect: a 3xx is a failure.
    this.agent = new Agent({
      connections: CONNECTIONS_PER_TARGET,
      keepAliveTimeout: keepAliveMs,
      keepAliveMaxTimeout: keepAliveMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: timeoutMs, lookup: this.lookup },
    });
  }

  probe(address: string, port: number, path: string): Promise<Verdict> {
    if (isIP(address)) {
      // A literal address skips the lookup, where names are judged: judge it here.
      const refusal = this.hosts.refusal(address, address);
      if (refusal) return Promise.resolve({ pass: false, output: `refused: ${refusal}`, failure: 'refused' });
    }
    // A request line carries visible ASCII only: anything else could end it and start another.
    if (!/^\/[\x21-\x7e]*$/.test(path)) return Promise.resolve({ pass: false, output: 'invalid request path', failure: 'connection' });
    const host = isIP(address) === 6 ? `[${address}]` : address;
    const options: Dispatcher.DispatchOptions = { origin: `${this.scheme}://${host}:${port}`, path, method: 'GET', headers: HEADERS };
    return new Promise((resolve) => {
      const check = new Check(performance.now() + this.timeoutMs, options, this, resolve);
      this.queue.push(check);
      this.timer ??= setTimeout(this.expire, this.timeoutMs);
      this.send(check);
    });
  }

  /** Hands a check to undici: when it starts, and once more for its one retry. */
  send(check: Check): void {
    try {
      this.agent.dispatch(check.options, check);
    } catch (error) {
      check.settle(this.failure(error));
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.agent.destroy();
  }

  /** Ends every check past its deadline, then sleeps until the next one's. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.queue.length && (this.queue[this.head].settled || this.queue[this.head].deadline <= now)) {
      const check = this.queue[this.head++];
      if (!check.settled) check.expire(this.timedOut());
    }
    // Compacted a batch at a time, so that a check costs no shift of the whole queue.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.head < this.queue.length) this.timer = setTimeout(this.expire, Math.max(1, this.queue[this.head].deadline - now));
  };

  /** Resolves a name as connect would, and refuses it unless an address it resolves to is allowed. */
  private readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const allowed = addresses.filter((a) => this.hosts.refusal(hostname, a.address) === undefined);
      if (allowed.length === 0) {
        const why = addresses.length > 0 ? this.hosts.refusal(hostname, addresses[0].address)! : `${hostname} has no address`;
        return callback(new Refused(why), []);
      }
      if (options.all) callback(null, allowed);
      else callback(null, allowed[0].address, allowed[0].family);
    });
  };

  private timedOut(): Verdict {
    return { pass: false, output: `timeout after ${this.timeoutMs} ms`, failure: 'timeout' };
  }

  /** The verdict on an error undici or the connector reported. */
  failure(error: unknown): Verdict {
    const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const cause = err.cause instanceof Refused ? err.cause : err;
    if (cause instanceof Refused) return { pass: false, output: `refused: ${cause.message}`.slice(0, OUTPUT_LENGTH * 2), failure: 'refused' };
    if (err instanceof CheckTimeout || /timeout/i.test(err.code ?? '')) return this.timedOut();
    if (err instanceof errors.HTTPParserError) return { pass: false, output: 'not an HTTP/1.x response', failure: 'connection' };
    const code = err.code ?? err.cause?.code;
    return { pass: false, output: (code ? `${code}: ${err.message}` : err.message).slice(0, OUTPUT_LENGTH), failure: 'connection' };
  }
}

function byStatus(status: number): Verdict {
  const pass = status >= 200 && status < 300;
  return { pass, output: `HTTP ${status}`, ...(!pass && { failure: 'status' as const }) };
}
