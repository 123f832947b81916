import { get, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { authorization, send, type Exchange, type SendOptions } from './http.js';
import type { RunResult } from './load.js';

/**
 * SSE fan-out: `watchers` streams on GET /registry/events, one writer PATCHing a VM with a
 * sequence number in its metadata. Latency is from the moment the PATCH is sent to the
 * moment a watcher has read the event carrying that number. The writer waits for every
 * watcher (or a deadline) before the next write, so it measures delivery, not a backlog.
 */

const EVENTS = '/registry/events';
/** A write not delivered to every watcher within this long counts its missing deliveries as failed. */
const DELIVERY_DEADLINE_MS = 2_000;

export interface Watcher {
  status: number;
  headers: IncomingHttpHeaders;
  close(): void;
}

/** Which events a watcher asks for: a query string such as `?role=infra`, sent as its agent would. */
export interface WatchOptions extends Pick<SendOptions, 'token' | 'localAddress'> {
  query?: string;
  /** Called when an open stream ends or breaks, whoever ended it. */
  onClose?: () => void;
}

/** Opens one stream and calls `onFrame` with every frame (event, comment or keep-alive) it reads. */
export function watch(url: string, onFrame: (frame: string) => void, options: WatchOptions = {}): Promise<Watcher> {
  return new Promise((resolve, reject) => {
    const headers = { accept: 'text/event-stream', ...authorization(options.token) };
    // No agent: each watcher holds its own connection for the whole run, as separate agents would.
    const req: ClientRequest = get(`${url}${EVENTS}${options.query ?? ''}`, { agent: false, headers, localAddress: options.localAddress }, (res) => {
      // The 10 s are for the headers: an open stream may be idle longer (keep-alives come every 15 s).
      req.setTimeout(0);
      const watcher = { status: res.statusCode ?? 0, headers: res.headers, close: () => req.destroy() };
      if (watcher.status !== 200) {
        res.resume();
        resolve(watcher);
        return;
      }
      res.setEncoding('utf8');
      let buffered = '';
      res.on('data', (text: string) => {
        buffered += text;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) !== -1) {
          const frame = buffered.slice(0, end + 2);
          buffered = buffered.slice(end + 2);
          onFrame(frame);
        }
      });
      res.on('error', () => {});
      res.on('close', () => options.onClose?.());
      resolve(watcher);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${EVENTS} sent no headers within 10 s`)));
    req.on('error', reject);
  });
}

/** Calls `onEvent` for every frame that carries a benchSeq, the number the fan-out's writer put in. */
const withBenchSeq = (onEvent: (seq: number, frame: string) => void) => (frame: string) => {
  const seq = /"benchSeq":(\d+)/.exec(frame)?.[1];
  if (seq !== undefined) onEvent(Number(seq), frame);
};

const patchBody = (seq: number) => JSON.stringify({ metadata: { task: 'process invoices', swarm: 'bench', benchSeq: seq } });

export type Probe =
  | { skip: string }
  | { patch: Exchange; sse: { headers: IncomingHttpHeaders; frame: string } };

/**
 * Captures what ours sends a watcher for one PATCH, for the ceiling to replay; or says why
 * the scenario cannot run (the endpoint is still being built: 404).
 */
export async function probeEvents(url: string, vmUrl: string): Promise<Probe> {
  let delivered: (frame: string) => void = () => {};
  const frame = new Promise<string>((resolve) => (delivered = resolve));
  let watcher: Watcher;
  try {
    watcher = await watch(url, withBenchSeq((_seq, text) => delivered(text)));
  } catch (error) {
    return { skip: `GET ${EVENTS} failed (${(error as Error).message}): fan-out not measured` };
  }
  try {
    if (watcher.status === 404) {
      return { skip: `GET ${EVENTS} answered 404: the SSE endpoint has not landed yet, so the fan-out was not measured` };
    }
    if (watcher.status !== 200) return { skip: `GET ${EVENTS} answered ${watcher.status}, not 200: fan-out not measured` };
    const patch = await send(vmUrl, 'PATCH', patchBody(0));
    if (patch.status !== 200) return { skip: `PATCH ${vmUrl} answered ${patch.status}: fan-out not measured` };
    const timeout = sleep(5_000, undefined, { ref: false });
    const text = await Promise.race([frame, timeout]);
    if (text === undefined) return { skip: `no event reached a watcher within 5 s of a PATCH: fan-out not measured` };
    return { patch, sse: { headers: watcher.headers, frame: text } };
  } finally {
    watcher.close();
  }
}

/** The p-th percentile of ascending values; 0 for none. */
export const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/** Opens the watchers on `url`, writes to `vmPath` there until `seconds` pass, and closes them. */
export async function fanOut(url: string, vmPath: string, watchers: number, seconds: number): Promise<RunResult> {
  const sentAt = new Map<number, number>();
  const remaining = new Map<number, number>();
  let allDelivered = () => {};
  const latencies: number[] = [];
  const onEvent = (seq: number) => {
    const sent = sentAt.get(seq);
    const left = remaining.get(seq);
    if (sent === undefined || left === undefined) return;
    latencies.push(performance.now() - sent);
    remaining.set(seq, left - 1);
    if (left === 1) allDelivered();
  };
  const open: Watcher[] = [];
  try {
    // In batches: a thousand connects at once would overflow the listen backlog and measure SYN retries.
    for (let i = 0; i < watchers; i += 100) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, watchers - i) }, () => watch(url, withBenchSeq(onEvent))));
      open.push(...batch);
      const refused = batch.find((w) => w.status !== 200);
      if (refused) throw new Error(`a watcher got ${refused.status} from ${EVENTS}`);
    }
    let failed = 0;
    let ok = 0;
    const began = performance.now();
    const deadline = began + seconds * 1000;
    for (let seq = 1; performance.now() < deadline; seq++) {
      const delivered = new Promise<void>((resolve) => (allDelivered = resolve));
      remaining.set(seq, watchers);
      sentAt.set(seq, performance.now());
      const answer = await send(`${url}${vmPath}`, 'PATCH', patchBody(seq));
      if (answer.status !== 200) throw new Error(`PATCH ${vmPath} answered ${answer.status} during the fan-out`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([delivered, new Promise<void>((resolve) => (timer = setTimeout(resolve, DELIVERY_DEADLINE_MS)))]);
      clearTimeout(timer);
      const missing = remaining.get(seq)!;
      failed += missing;
      ok += watchers - missing;
      // Late deliveries of this write must not be counted against the next one.
      sentAt.delete(seq);
      remaining.delete(seq);
    }
    const elapsed = (performance.now() - began) / 1000;
    latencies.sort((a, b) => a - b);
    return { rps: ok / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), ok, failed, seconds: elapsed };
  } finally {
    for (const watcher of open) watcher.close();
  }
}
