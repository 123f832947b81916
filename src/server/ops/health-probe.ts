import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { FailureReason } from './health-messages.js';
import type { HealthHostRule } from './health-hosts.js';

/** Bytes of a body read before the connection is dropped: a health answer needs none. */
const BODY_CAP = 512;
/** Bytes of a status line and headers read before the connection is dropped. */
const HEAD_CAP = 8192;
const OUTPUT_LENGTH = 120;
/** Connections kept open per target between checks. */
const IDLE_PER_ORIGIN = 4;

export interface Verdict {
  pass: boolean;
  output: string;
  failure?: FailureReason;
}

class Refused extends Error {
  readonly code = 'EHEALTHREFUSED';
}

/** A connection kept open between checks; release() stops watching it as idle. */
interface Kept {
  socket: Socket;
  release(): void;
}

/** One check in flight: settled once, by its answer, its error or its deadline, whichever comes first. */
interface Probe {
  deadline: number;
  settled: boolean;
  socket?: Socket;
  settle(verdict: Verdict): void;
}

/**
 * Where a response ends (HTTP/1.1 framing: Content-Length, chunked, or the connection's end),
 * read only as far as the verdict and the reuse of the connection need.
 */
class Response {
  status = 0;
  private head = '';
  private body: 'length' | 'chunked' | 'close' | undefined;
  private left = 0;
  private chunks = '';
  /** Body bytes read so far. */
  private read = 0;
  /** The server will close the connection after it: it cannot be reused. */
  closes = false;

  /** 'done': the response is complete; 'enough': the status is known and the rest is not worth reading; else more is needed. */
  feed(data: Buffer): 'done' | 'enough' | 'more' | 'bad' {
    let rest = data;
    if (this.body === undefined) {
      this.head += data.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return this.head.length > HEAD_CAP ? this.statusOr('bad') : 'more';
      rest = Buffer.from(this.head.slice(end + 4), 'latin1');
      if (this.statusOr('bad') === 'bad') return 'bad';
      this.frame(this.head.slice(0, end).toLowerCase());
      if (this.body === 'length' && this.left === 0) return 'done';
    }
    this.read += rest.length;
    if (this.read > BODY_CAP) return 'enough';
    if (this.body === 'length') {
      this.left -= rest.length;
      // More than it announced: the status stands, the connection is not to be trusted again.
      return this.left < 0 ? 'enough' : this.left === 0 ? 'done' : 'more';
    }
    if (this.body === 'chunked') {
      this.chunks += rest.toString('latin1');
      // The last chunk (size 0) and the empty trailer end it; a body this small is read whole.
      return /(^|\r\n)0+(;[^\r\n]*)?\r\n([^\r\n]+\r\n)*\r\n$/.test(this.chunks) ? 'done' : 'more';
    }
    return 'more';
  }

  /** Whether the connection ended where a response without a length ends: at its close. */
  get endsAtClose(): boolean {
    return this.body === 'close';
  }

  private statusOr(otherwise: 'bad'): 'enough' | 'bad' {
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(this.head);
    if (!match) return otherwise;
    this.status = Number(match[1]);
    return 'enough';
  }

  private frame(head: string): void {
    this.closes = /\r\nconnection:[^\r\n]*close/.test(head) || head.startsWith('http/1.0');
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    if (/\r\ntransfer-encoding:[^\r\n]*chunked/.test(head)) this.body = 'chunked';
    else if (length) {
      this.body = 'length';
      this.left = Number(length[1]);
    } else if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) {
      this.body = 'length';
    } else {
      this.body = 'close';
      this.closes = true;
    }
  }
}

/**
 * One GET per check over plain sockets, bounded by the timeout from its start to the last byte
 * read. A health answer needs only its status and the end of a short body, so this reads the
 * status line, the framing headers and at most BODY_CAP bytes, and keeps the connection for the
 * next check of the same target when the response ended cleanly. One timer ends every check
 * that outlives its deadline: checks start in order and share one timeout, so the earliest
 * deadline is always the oldest check's.
 */
export class Prober {
  private readonly idle = new Map<string, Kept[]>();
  /** In flight, oldest first; `head` skips those already settled. */
  private queue: Probe[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly scheme: 'http' | 'https',
    private readonly timeoutMs: number,
    private readonly keepAliveMs: number,
    private readonly hosts: HealthHostRule,
  ) {}

  probe(address: string, port: number, path: string): Promise<Verdict> {
    if (isIP(address)) {
      // A literal address skips the lookup, where names are judged: judge it here.
      const refusal = this.hosts.refusal(address, address);
      if (refusal) return Promise.resolve({ pass: false, output: `refused: ${refusal}`, failure: 'refused' });
    }
    // A request line carries visible ASCII only: anything else could end it and start another.
    if (!/^\/[\x21-\x7e]*$/.test(path)) return Promise.resolve({ pass: false, output: 'invalid request path', failure: 'connection' });
    const host = isIP(address) === 6 ? `[${address}]` : address;
    const request = `GET ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\nuser-agent: vm-registry-health-check\r\nconnection: keep-alive\r\n\r\n`;
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
      this.send(probe, address, port, request, true);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const kept of this.idle.values()) for (const { socket } of kept) socket.destroy();
    this.idle.clear();
  }

  private send(probe: Probe, address: string, port: number, request: string, mayReuse: boolean): void {
    const origin = `${address}\n${port}`;
    const reused = mayReuse ? this.take(origin) : undefined;
    const socket = reused ?? this.connect(address, port);
    probe.socket = socket;
    const response = new Response();
    let received = false;
    const done = (verdict: Verdict, keep: boolean) => {
      socket.off('data', onData).off('error', fail).off('close', onClose);
      if (keep && !probe.settled && !this.closed) this.keep(origin, socket);
      else socket.destroy();
      probe.settle(verdict);
    };
    const onData = (data: Buffer) => {
      received = true;
      const state = response.feed(data);
      if (state === 'more') return;
      if (state === 'bad') done({ pass: false, output: 'not an HTTP/1.x response', failure: 'connection' }, false);
      else done(byStatus(response.status), state === 'done' && !response.closes);
    };
    const fail = (error: Error) => {
      if (reused && !received && !probe.settled) {
        // A kept connection the target closed meanwhile: ask again on a new one.
        socket.off('data', onData).off('error', fail).off('close', onClose).destroy();
        this.send(probe, address, port, request, false);
        return;
      }
      done(this.failure(error), false);
    };
    const onClose = () => {
      if (response.endsAtClose && response.status > 0) done(byStatus(response.status), false);
      else fail(Object.assign(new Error('the connection closed before the response ended'), { code: 'ECONNRESET' }));
    };
    socket.on('data', onData).on('error', fail).on('close', onClose);
    socket.write(request);
  }

  private connect(address: string, port: number): Socket {
    const options = { host: address, port, lookup: this.lookup, noDelay: true };
    if (this.scheme === 'https') return tlsConnect({ ...options, servername: isIP(address) ? undefined : address });
    return tcpConnect(options);
  }

  /** A kept connection to `origin`, no longer watched as idle; undefined when there is none. */
  private take(origin: string): Socket | undefined {
    const kept = this.idle.get(origin)?.pop();
    if (!kept) return undefined;
    kept.release();
    return kept.socket;
  }

  /** Kept for the next check of the same target, until the keep-alive passes or the target closes it. */
  private keep(origin: string, socket: Socket): void {
    let sockets = this.idle.get(origin);
    if (!sockets) this.idle.set(origin, (sockets = []));
    if (sockets.length >= IDLE_PER_ORIGIN) return void socket.destroy();
    const kept: Kept = {
      socket,
      release: () => {
        socket.off('close', drop).off('error', drop).off('data', drop).off('timeout', drop);
        socket.setTimeout(0);
      },
    };
    const drop = () => {
      kept.release();
      socket.destroy();
      const at = sockets.indexOf(kept);
      if (at >= 0) sockets.splice(at, 1);
      if (sockets.length === 0 && this.idle.get(origin) === sockets) this.idle.delete(origin);
    };
    // Nothing was asked of an idle connection: whatever arrives on it is not ours to read.
    socket.on('close', drop).on('error', drop).on('data', drop);
    socket.setTimeout(this.keepAliveMs, drop);
    sockets.push(kept);
  }

  /** Ends every check past its deadline, then sleeps until the next one's. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.queue.length && (this.queue[this.head].settled || this.queue[this.head].deadline <= now)) {
      const probe = this.queue[this.head++];
      if (probe.settled) continue;
      probe.settle({ pass: false, output: `timeout after ${this.timeoutMs} ms`, failure: 'timeout' });
      probe.socket?.destroy();
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
    const err = error as NodeJS.ErrnoException;
    if (err instanceof Refused) return { pass: false, output: `refused: ${err.message}`.slice(0, OUTPUT_LENGTH * 2), failure: 'refused' };
    return { pass: false, output: (err.code ? `${err.code}: ${err.message}` : err.message).slice(0, OUTPUT_LENGTH), failure: 'connection' };
  }
}

function byStatus(status: number): Verdict {
  const pass = status >= 200 && status < 300;
  return { pass, output: `HTTP ${status}`, ...(!pass && { failure: 'status' as const }) };
}
