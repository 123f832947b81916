import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { ONE_MATCH_ROLE, ONE_PERCENT_ROLE, roleOf, vmId } from './fixtures.js';
import { cpuSeconds, type Usage } from './proc.js';
import type { PreloadResult } from './preload.js';
import type { Percentiles, SwarmRun } from './results.js';
import { percentile } from './sse.js';
import { listenOverflows, overall, sampleServer, slicesOf } from './swarm-slices.js';
import { clientFor } from './swarm-clients.js';
import type { PartResult, PartSetup, ToPart, FromPart } from './swarm-worker.js';

/**
 * The swarm of issue 19, all at once for `seconds` over N preloaded VMs: heartbeats at N/60 a
 * second, 1% of the VMs a minute deregistered and as many registered, 0.5% a minute status
 * changes, 1,000 event watchers, 500 blocking discovers, and 10 plain discovers a second whose
 * latency is the discover figure. The same driver runs every contender: this thread starts
 * the contender, preloads it and measures its processes, and the agents run in worker threads
 * (swarm-worker.ts), so that at 100k VMs no one event loop of the load generator is the limit.
 */

export type ChangeType = 'registered' | 'updated' | 'deregistered';

/** A discover answer as the client sees it: the index to re-ask with, and which VMs. */
export interface Answer {
  index: number;
  /** The ids of the VMs returned, sorted and joined: equal when the result did not change. */
  ids: string;
}

/** What a watcher asks for: every VM of a role, or one VM (whose role etcd's key holds). */
export type WatchFilter = { role: string; id?: undefined } | { role: string; id: string };

/** An operation the contender refused or failed: `kind` names it in the errors table. */
export class SwarmFailure extends Error {
  constructor(readonly kind: string, message = kind) {
    super(message);
  }
}

/** How a thread of the load generator reaches a contender: plain data, posted to each worker. */
export type SwarmConnection = { kind: 'ours'; urls: string[]; token: string } | { kind: 'etcd'; url: string };

export interface ServerMetrics {
  wakeups: number;
  unchanged: number;
  loopDelay: { p99Ms: number; maxMs: number };
  /** Heartbeats the server took longer than SLOW_MS over, by its own request histogram. */
  slowHeartbeats?: number;
}

/** A contender's processes, as the main thread starts, measures and stops them. */
export interface SwarmServer {
  connection: SwarmConnection;
  usage(): Usage;
  /**
   * What the server says of itself, if it says it: its count of blocking wake-ups and of those
   * that found nothing new, and its event loop's delay since the last time it was asked (the
   * worst replica's), which tells a server that computes from one that waits.
   */
  serverMetrics(): Promise<ServerMetrics | undefined>;
  /** Why the contender is no longer running (a process exited), or undefined while it runs. */
  died(): string | undefined;
  /** Stops every process of the contender and deletes its data. */
  stop(): Promise<void>;
}

/**
 * A contender's agents, doing each of the swarm's operations in its idiom; one per thread.
 * `agent` numbers the agent doing it (a VM, a watcher, a discovering agent), for contenders
 * that give agents addresses or connections of their own. Operations throw SwarmFailure when
 * refused.
 */
export interface SwarmClient {
  preload(n: number): Promise<PreloadResult>;
  register(id: string, role: string, agent: number): Promise<void>;
  heartbeat(id: string, role: string, agent: number): Promise<void>;
  setStatus(id: string, role: string, status: 'paused', agent: number): Promise<void>;
  deregister(id: string, role: string, agent: number): Promise<void>;
  discover(role: string, agent: number): Promise<Answer>;
  /** Answers once the role's result may have moved past `after`, or 'timeout' when the wait ran out. */
  waitForChange(role: string, after: Answer, agent: number, signal: AbortSignal): Promise<Answer | 'timeout'>;
  /** Opens a watcher; `onEvent` gets each change it reads, `onGap` anything that may have lost some. */
  watch(filter: WatchFilter, agent: number, onEvent: (type: ChangeType, id: string) => void, onGap: (why: string) => void): Promise<() => void>;
  close(): void;
}

export const SWARM_WATCHERS = { [ONE_MATCH_ROLE]: 200, [ONE_PERCENT_ROLE]: 200, worker: 100, singleVm: 500 };
/** Blocking discovers: the roles agents wait on, infra (one VM) and lieutenants (1%). */
export const SWARM_BLOCKING = { [ONE_MATCH_ROLE]: 250, [ONE_PERCENT_ROLE]: 250 };
/**
 * Threads of the load generator: the VMs (heartbeats, churn, status) split over two by VM, the
 * watchers over two, plain discovers on one and blocking discovers on another. More threads than the machine's cores
 * is no waste here: each is idle most of the time, and none must be the one that falls behind.
 */
const WRITER_THREADS = 2;
const WATCHER_THREADS = 2;
/** After the mix, how long watchers may still deliver the last changes before undelivered ones count as gaps. */
const GRACE_MS = 5_000;
/** Watchers' agent numbers: past every VM's (see SwarmClient). */
export const WATCHER_AGENTS = 1_000_000;
export const DISCOVER_AGENTS = 2_000_000;

const summary = (values: number[]): Percentiles => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: sorted.length };
};

/** One thread of the load generator: its setup, then its result once told to finish. */
class Part {
  private readonly worker: Worker;
  private readonly messages: FromPart[] = [];
  private readonly waiting: ((message: FromPart) => void)[] = [];
  private failed: Error | undefined;

  constructor(setup: PartSetup) {
    this.worker = new Worker(new URL('./swarm-worker.js', import.meta.url), { workerData: setup });
    this.worker.on('message', (message: FromPart) => this.arrive(message));
    this.worker.on('error', (error) => this.arrive({ type: 'failed', message: error.message }));
    this.worker.on('exit', (code) => this.arrive({ type: 'failed', message: `a load generator thread exited (${code})` }));
  }

  private arrive(message: FromPart) {
    if (message.type === 'failed') this.failed ??= new Error(message.message);
    const waiter = this.waiting.shift();
    if (waiter) waiter(message);
    else this.messages.push(message);
  }

  async next<T extends FromPart['type']>(type: T): Promise<Extract<FromPart, { type: T }>> {
    if (this.failed) throw this.failed;
    const message = this.messages.shift() ?? (await new Promise<FromPart>((resolve) => this.waiting.push(resolve)));
    if (message.type === 'failed') throw new Error(message.message);
    if (message.type !== type) throw new Error(`a load generator thread sent ${message.type} where ${type} was due`);
    return message as Extract<FromPart, { type: T }>;
  }

  post(message: ToPart) {
    this.worker.postMessage(message);
  }

  async end(): Promise<PartResult> {
    this.post({ type: 'finish' });
    const { result } = await this.next('done');
    await this.worker.terminate();
    return result;
  }

  terminate() {
    void this.worker.terminate();
  }
}

export async function runSwarm(server: SwarmServer, n: number, seconds: number, progress: (line: string) => void): Promise<Omit<SwarmRun, 'contender'>> {
  progress(`  preloading ${n.toLocaleString('en-US')} VMs…`);
  const preloader = clientFor(server.connection);
  const preload = await preloader.preload(n);
  preloader.close();
  progress(`  preloaded in ${preload.seconds.toFixed(1)} s (${Math.round(preload.perSecond)}/s)`);

  // Single-VM watchers each on a preloaded VM other than the infra one, which never changes.
  const filters: WatchFilter[] = [];
  for (const role of [ONE_MATCH_ROLE, ONE_PERCENT_ROLE, 'worker'] as const) {
    for (let i = 0; i < SWARM_WATCHERS[role]; i++) filters.push({ role });
  }
  for (let i = 0; i < SWARM_WATCHERS.singleVm; i++) {
    const index = 1 + Math.floor(Math.random() * (n - 1));
    filters.push({ role: roleOf(index), id: vmId(index) });
  }

  const { connection } = server;
  const parts: Part[] = [];
  const start = (setup: PartSetup) => {
    const part = new Part(setup);
    parts.push(part);
    return part;
  };
  try {
    progress(`  opening ${filters.length} watchers in ${WATCHER_THREADS} threads…`);
    const watchers = Array.from({ length: WATCHER_THREADS }, (_, t) =>
      start({ kind: 'watchers', connection, n, seconds, filters: filters.flatMap((filter, i) => (i % WATCHER_THREADS === t ? [{ filter, agent: WATCHER_AGENTS + i }] : [])) }),
    );
    const writers = Array.from({ length: WRITER_THREADS }, (_, t) => start({ kind: 'writers', connection, n, seconds, thread: t, threads: WRITER_THREADS }));
    const discoverers = [start({ kind: 'discoverers', connection, n, seconds }), start({ kind: 'blockers', connection, n, seconds })];
    const opened = (await Promise.all(parts.map((part) => part.next('ready')))).flatMap((ready) => ready.opened);

    const watchersOf = { roles: new Map<string, number>(), ids: new Map<string, number>() };
    for (const filter of opened) {
      if (filter.id) watchersOf.ids.set(filter.id, (watchersOf.ids.get(filter.id) ?? 0) + 1);
      else watchersOf.roles.set(filter.role, (watchersOf.roles.get(filter.role) ?? 0) + 1);
    }

    const before = server.usage();
    const generatorBefore = cpuSeconds(process.pid);
    const serverBefore = await server.serverMetrics();
    const overflowsBefore = listenOverflows();
    // Every thread runs to the same deadline, told in wall-clock time: its performance.now() has an origin of its own.
    const began = Date.now();
    const deadline = began + 200 + seconds * 1000;
    for (const part of parts) part.post({ type: 'go', began, deadline });
    progress(`  swarm for ${seconds} s…`);
    const samples = await sampleServer(server, began, deadline);
    const died = server.died();
    const after = server.usage();
    const generatorCpu = cpuSeconds(process.pid) - generatorBefore;
    const elapsed = (Date.now() - began) / 1000;
    progress(`  mix done; waiting for answers and deliveries…`);
    const results = await Promise.all([...writers, ...discoverers].map((part) => part.end()));
    await sleep(GRACE_MS);
    results.push(...(await Promise.all(watchers.map((part) => part.end()))));
    const slices = slicesOf(results, samples, began, { cpuSeconds: before.cpuSeconds, slowHeartbeats: serverBefore?.slowHeartbeats, listenOverflows: overflowsBefore });
    return { ...merge({ results, died, before, after, elapsed, generatorCpu, watchersOf, preload, serverBefore, serverAfter: overall(samples) }), slices };
  } finally {
    for (const part of parts) part.terminate();
  }
}

interface Measured {
  results: PartResult[];
  died: string | undefined;
  before: Usage;
  after: Usage;
  elapsed: number;
  generatorCpu: number;
  watchersOf: { roles: Map<string, number>; ids: Map<string, number> };
  preload: PreloadResult;
  serverBefore: ServerMetrics | undefined;
  serverAfter: ServerMetrics | undefined;
}

/** The threads' figures as one: latencies pooled, event lag from each change's acknowledgement to each of its deliveries. */
function merge({ results, died, before, after, elapsed, generatorCpu, watchersOf, preload, serverBefore, serverAfter }: Measured): Omit<SwarmRun, 'contender'> {
  const errors: Record<string, number> = {};
  const add = (kind: string, count: number) => (errors[kind] = (errors[kind] ?? 0) + count);
  if (died) add(died, 1);
  const sent = { heartbeat: 0, register: 0, deregister: 0, status: 0, discover: 0, blocking: 0 };
  const latency = { heartbeat: [] as number[], register: [] as number[], discover: [] as number[] };
  const blocking = { wakeups: 0, unchanged: 0 };
  const delivered = new Map<string, number[]>();
  const acknowledged: PartResult['acknowledged'] = [];
  for (const result of results) {
    for (const [kind, count] of Object.entries(result.errors)) add(kind, count);
    for (const kind of Object.keys(sent) as (keyof typeof sent)[]) sent[kind] += result.sent[kind] ?? 0;
    for (const kind of Object.keys(latency) as (keyof typeof latency)[]) latency[kind].push(...(result.latency[kind] ?? []));
    blocking.wakeups += result.blocking.wakeups;
    blocking.unchanged += result.blocking.unchanged;
    for (const [key, times] of result.delivered) delivered.set(key, [...(delivered.get(key) ?? []), ...times]);
    acknowledged.push(...result.acknowledged);
  }

  const lags: number[] = [];
  let expected = 0;
  for (const [type, id, role, at] of acknowledged) {
    const concerned = (watchersOf.roles.get(role) ?? 0) + (watchersOf.ids.get(id) ?? 0);
    expected += concerned;
    const times = delivered.get(`${type}:${id}`) ?? [];
    // An event may reach a watcher before the writer has read its answer: that is no lag at all.
    for (const time of times) lags.push(Math.max(0, time - at));
    if (concerned > times.length) add('event gap: deliveries missing', concerned - times.length);
  }
  const changes = sent.register + sent.deregister + sent.status;
  const requests = Object.values(sent).reduce((sum, count) => sum + count, 0);
  const cpu = after.cpuSeconds - before.cpuSeconds;
  return {
    preload,
    seconds: elapsed,
    sent,
    changes,
    cpuPercent: (cpu / elapsed) * 100,
    cpuMsPerOperation: (cpu * 1000) / (requests - sent.blocking),
    rssMb: after.rssMb,
    databaseMb: after.databaseMb || undefined,
    latency: { heartbeat: summary(latency.heartbeat), register: summary(latency.register), discover: summary(latency.discover) },
    eventLag: { ...summary(lags), expected },
    blocking: {
      ...blocking,
      perChange: changes === 0 ? 0 : blocking.wakeups / changes,
      server:
        serverBefore && serverAfter
          ? { wakeups: serverAfter.wakeups - serverBefore.wakeups, unchanged: serverAfter.unchanged - serverBefore.unchanged }
          : undefined,
    },
    serverLoopDelay: serverAfter?.loopDelay,
    generator: {
      cpuPercent: (generatorCpu / elapsed) * 100,
      threads: results.length,
      busiestLoopPercent: Math.max(...results.map((result) => result.loopBusy * 100)),
    },
    errors,
  };
}
