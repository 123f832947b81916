import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import type { FailureReason } from './health-messages.js';
import type { HealthHostRule } from './health-hosts.js';

/** Bytes of a body read before the connection is dropped: a health answer needs none. */
const BODY_CAP = 512;
const OUTPUT_LENGTH = 120;
const HEADERS = { 'user-agent': 'vm-registry-health-check' };

export interface Verdict {
  pass: boolean;
  output: string;
  failure?: FailureReason;
}

class Refused extends Error {
  readonly code = 'EHEALTHREFUSED';
}

class CheckTimeout extends Error {}

/** One check in flight: settled once, by its answer, its error or its deadline, whichever comes first. */
interface Probe {
  deadline: number;
  settle(verdict: Verdict): void;
  settled: boolean;
  abort?: (reason: Error) => void;
}

/**
 * One GET per check, bounded by the timeout from its start to the last byte read. The
 * connections to each target stay open between checks (one undici agent), the request goes
 * through undici's dispatch handler (no body stream, no response object), and one timer ends
 * every check that outlives its deadline: checks start in order and share one timeout, so the
 * earliest deadline is always the oldest check's.
 */
export class Prober {
  private readonly agent: Agent;
  /** In flight, oldest first; `head` skips those already settled. */
  private queue: Probe[] = [];
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
      keepAliveTimeout: keepAliveMs,
      keepAliveMaxTimeout: keepAliveMs,
      connections: 4,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: timeoutMs, lookup: this.lookup },
    });
  }

  probe(address: string, port: number, path: string): Promise<Verdict> {
    if (isIP(address)) {
      // A literal address skips the lookup, where names are judged: judge it here.
      const refusal = this.hosts.refusal(address, address);
      if (refusal) return Promise.resolve({ pass: false, output: `refused: ${refusal}`, failure: 'refused' });
    }
    return new Promise((resolve) => {
      const probe: Probe = {
        deadline: performance.now() + this.timeoutMs,
        settled: false,
        settle: (verdict) => {
          if (probe.settled) return;
          probe.settled = true;
          resolve(verdict);
        },
      };
      this.queue.push(probe);
      this.timer ??= setTimeout(this.expire, this.timeoutMs);
      const host = isIP(address) === 6 ? `[${address}]` : address;
      let status = 0;
      let read = 0;
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (controller) => {
          // Its deadline passed while it waited for a connection.
          if (probe.settled) controller.abort(new CheckTimeout());
          else probe.abort = (reason) => controller.abort(reason);
        },
        onResponseStart: (_controller, statusCode) => {
          status = statusCode;
        },
        onResponseData: (controller, chunk) => {
          read += chunk.length;
          if (read <= BODY_CAP) return;
          // Dropping the connection costs less than reading an endless body; the status is known.
          probe.settle(this.byStatus(status));
          controller.abort(new Error('body cap reached'));
        },
        onResponseEnd: () => probe.settle(this.byStatus(status)),
        onResponseError: (_controller, error) => probe.settle(this.failure(error)),
      };
      try {
        this.agent.dispatch({ origin: `${this.scheme}://${host}:${port}`, path, method: 'GET', headers: HEADERS }, handler);
      } catch (error) {
        probe.settle(this.failure(error));
      }
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.agent.destroy();
  }

  private byStatus(status: number): Verdict {
    const pass = status >= 200 && status < 300;
    return { pass, output: `HTTP ${status}`, ...(!pass && { failure: 'status' as const }) };
  }

  /** Ends every check past its deadline, then sleeps until the next one's. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.queue.length && (this.queue[this.head].settled || this.queue[this.head].deadline <= now)) {
      const probe = this.queue[this.head++];
      if (probe.settled) continue;
      probe.settle({ pass: false, output: `timeout after ${this.timeoutMs} ms`, failure: 'timeout' });
      probe.abort?.(new CheckTimeout());
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

  private failure(error: unknown): Verdict {
    const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const cause = err.cause instanceof Refused ? err.cause : err;
    if (cause instanceof Refused) return { pass: false, output: `refused: ${cause.message}`.slice(0, OUTPUT_LENGTH * 2), failure: 'refused' };
    if (err instanceof CheckTimeout || /timeout/i.test(err.code ?? '') || err.name === 'TimeoutError') {
      return { pass: false, output: `timeout after ${this.timeoutMs} ms`, failure: 'timeout' };
    }
    const code = err.code ?? err.cause?.code;
    return { pass: false, output: (code ? `${code}: ${err.message}` : err.message).slice(0, OUTPUT_LENGTH), failure: 'connection' };
  }
}
