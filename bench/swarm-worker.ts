import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { ONE_MATCH_ROLE, ONE_PERCENT_ROLE, roleOf, vmId } from './fixtures.js';
import { steady } from './pace.js';
import { SLICE_MS } from './swarm-slices.js';
import { clientFor } from './swarm-clients.js';
import {
  DISCOVER_AGENTS,
  SWARM_BLOCKING,
  SwarmFailure,
  type Answer,
  type ChangeType,
  type SwarmClient,
  type SwarmConnection,
  type WatchFilter,
} from './swarm.js';

/**
 * One thread of the swarm's load generator (see runSwarm): the VMs of a share of the swarm
 * (heartbeats, churn, status changes), a share of the watchers, or the discovering agents.
 * Times that cross threads (a change acknowledged, an event read) are wall-clock milliseconds
 * with the precision of performance.now(): performance.timeOrigin + performance.now(), as each
 * thread's performance.now() counts from that thread's own start.
 */

type SentKind = 'heartbeat' | 'register' | 'deregister' | 'status' | 'discover' | 'blocking';

export type PartSetup = { connection: SwarmConnection; n: number; seconds: number } & (
  | { kind: 'writers'; thread: number; threads: number }
  | { kind: 'watchers'; filters: { filter: WatchFilter; agent: number }[] }
  | { kind: 'discoverers' }
  | { kind: 'blockers' }
);
export type ToPart = { type: 'go'; began: number; deadline: number } | { type: 'finish' };
export type FromPart = { type: 'ready'; opened: WatchFilter[] } | { type: 'done'; result: PartResult } | { type: 'failed'; message: string };

export interface PartResult {
  sent: Partial<Record<SentKind, number>>;
  latency: Partial<Record<'heartbeat' | 'register' | 'discover', number[]>>;
  /** When each request in `latency` was sent (wall clock, ms), in the same order. */
  sentAt: Partial<Record<'heartbeat' | 'register' | 'discover', number[]>>;
  /** This thread's worst timer lateness in each slice of the mix (SLICE_MS), ms. */
  loopLag: number[];
  blocking: { wakeups: number; unchanged: number };
  /** The changes this thread's VMs had answered: type, VM, its role, and when (wall clock, ms). */
  acknowledged: [type: ChangeType, id: string, role: string, at: number][];
  /** When this thread's watchers read each event, by `${type}:${id}` (wall clock, ms). */
  delivered: [key: string, times: number[]][];
  errors: Record<string, number>;
  /** The share of the mix this thread's event loop was busy: near 1, it was the limit. */
  loopBusy: number;
}

/** How often each thread checks its own timers' lateness. */
const LAG_TICK_MS = 20;

/** VMs of each writer thread that heartbeat once before the mix (see warmUp): every agent address of ours several times over. */
const WARM_VMS = 1_000;

/** Plain discovers a second, whose latency is the discover figure. */
const PLAIN_DISCOVERS_PER_SECOND = 10;

const wallClock = () => performance.timeOrigin + performance.now();

const failureKind = (operation: string, error: unknown) =>
  `${operation}: ${error instanceof SwarmFailure ? error.kind : ((error as NodeJS.ErrnoException).code ?? (error as Error).message)}`;

/** What every kind of part keeps while it runs. */
class Tally {
  readonly result: PartResult = { sent: {}, latency: {}, sentAt: {}, loopLag: [], blocking: { wakeups: 0, unchanged: 0 }, acknowledged: [], delivered: [], errors: {}, loopBusy: 0 };
  private readonly pending = new Set<Promise<unknown>>();

  fail = (kind: string) => void (this.result.errors[kind] = (this.result.errors[kind] ?? 0) + 1);
  count = (kind: SentKind) => void (this.result.sent[kind] = (this.result.sent[kind] ?? 0) + 1);

  /** Runs `work`, noting its latency under `kind` if given, and a failure as `operation`'s. */
  track<T>(operation: string, kind: keyof PartResult['latency'] | undefined, work: () => Promise<T>): Promise<T | undefined> {
    const began = performance.now();
    const done = work().then(
      (value) => {
        if (kind) {
          (this.result.latency[kind] ??= []).push(performance.now() - began);
          (this.result.sentAt[kind] ??= []).push(performance.timeOrigin + began);
        }
        return value;
      },
      (error) => {
        this.fail(failureKind(operation, error));
        return undefined;
      },
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
    return done;
  }

  settled(): Promise<unknown> {
    return Promise.all([...this.pending]);
  }
}

/**
 * The VMs numbered `thread` modulo `threads`, and this thread's share of every rate: heartbeats
 * at N/60 a second over all VMs, 1% of them a minute deregistered and as many registered, 0.5%
 * a minute set to paused (each VM once at most, so that its event is the only one of its kind).
 */
async function writers(client: SwarmClient, tally: Tally, setup: PartSetup & { kind: 'writers' }, deadline: number): Promise<void> {
  const { n, thread, threads } = setup;
  const roles = new Map<string, string>();
  const agents = new Map<string, number>();
  const live: string[] = [];
  const position = new Map<string, number>();
  const add = (id: string, role: string, agent: number) => {
    roles.set(id, role);
    agents.set(id, agent);
    position.set(id, live.push(id) - 1);
  };
  const remove = (id: string) => {
    const at = position.get(id)!;
    const last = live.pop()!;
    if (last !== id) {
      live[at] = last;
      position.set(last, at);
    }
    position.delete(id);
  };
  for (let i = thread; i < n; i += threads) add(vmId(i), roleOf(i), i);
  const randomLive = () => live[Math.floor(Math.random() * live.length)];
  // The infra VM stays (agents block on it), as does its role's count.
  const randomChangeable = (): string => {
    const id = randomLive();
    return id === vmId(0) && live.length > 1 ? randomChangeable() : id;
  };
  // A VM's requests in flight: it is deregistered only once they are answered, as its own agent would.
  const inFlight = new Map<string, Promise<unknown>>();
  const ofVm = <T>(id: string, work: Promise<T>) => {
    inFlight.set(id, Promise.all([inFlight.get(id), work]));
    return work;
  };
  const acknowledge = (type: ChangeType, id: string, role: string) => tally.result.acknowledged.push([type, id, role, wallClock()]);
  const statusChanged = new Set<string>();
  let registered = 0;
  const share = n / threads;

  await Promise.all([
    steady(share / 60, deadline, () => {
      const id = randomLive();
      tally.count('heartbeat');
      void ofVm(id, tally.track('heartbeat', 'heartbeat', () => client.heartbeat(id, roles.get(id)!, agents.get(id)!)));
    }),
    steady((share * 0.01) / 60, deadline, () => {
      const id = randomChangeable();
      const role = roles.get(id)!;
      remove(id);
      tally.count('deregister');
      void tally.track('deregister', undefined, async () => {
        await inFlight.get(id);
        await client.deregister(id, role, agents.get(id)!);
        inFlight.delete(id);
        acknowledge('deregistered', id, role);
      });
    }),
    steady((share * 0.01) / 60, deadline, () => {
      const index = registered++ * threads + thread;
      const id = `swarm-new-${index.toString().padStart(6, '0')}`;
      // The same mix of roles as the preload, never a second infra VM; its agent is the one that registered it.
      const role = roleOf(index + 1);
      tally.count('register');
      void ofVm(
        id,
        tally.track('register', 'register', async () => {
          await client.register(id, role, n + index);
          acknowledge('registered', id, role);
          add(id, role, n + index);
        }),
      );
    }),
    steady((share * 0.005) / 60, deadline, () => {
      const id = randomChangeable();
      if (statusChanged.has(id)) return;
      statusChanged.add(id);
      tally.count('status');
      void ofVm(
        id,
        tally.track('status', undefined, async () => {
          await client.setStatus(id, roles.get(id)!, 'paused', agents.get(id)!);
          acknowledge('updated', id, roles.get(id)!);
        }),
      );
    }),
  ]);
  await tally.settled();
}

const blockingAgent = (role: string, i: number) => DISCOVER_AGENTS + 500_000 + (role === ONE_MATCH_ROLE ? 0 : 1000) + i;

/**
 * Each blocking discover's first answer, asked before the mix as the watchers open before it:
 * an agent that waits on a role has read it once already. Asked all at once at the start of
 * the mix, 250 full listings of the 1% role (~400 KB each) met the first heartbeats of cold
 * connection pools, and their SYN retries (1 s, then 3 s) were most of every p99.
 */
async function firstAnswers(client: SwarmClient, tally: Tally): Promise<{ role: string; agent: number; answer?: Answer }[]> {
  const blockers = Object.entries(SWARM_BLOCKING).flatMap(([role, count]) => Array.from({ length: count }, (_, i) => ({ role, agent: blockingAgent(role, i) })));
  return Promise.all(blockers.map(async (blocker) => ({ ...blocker, answer: await tally.track('first discover', undefined, () => client.discover(blocker.role, blocker.agent)) })));
}

/**
 * The blocking discovers, each re-asking with its last answer's index. A thread of their own:
 * reading every woken agent's full answer at once stalls the thread that reads them, which
 * would count in the latency of plain discovers sharing it.
 */
async function blockers(client: SwarmClient, tally: Tally, firsts: Awaited<ReturnType<typeof firstAnswers>>, deadline: number): Promise<void> {
  const ended = new AbortController();
  // Every blocking discover listens for the end of the run.
  setMaxListeners(0, ended.signal);
  const waiting = firsts.map(async ({ role, agent, answer }) => {
    let last = answer;
    while (performance.now() < deadline) {
      try {
        last ??= await client.discover(role, agent);
        tally.count('blocking');
        const woken = await client.waitForChange(role, last, agent, ended.signal);
        if (woken === 'timeout' || performance.now() >= deadline) continue;
        tally.result.blocking.wakeups++;
        if (woken.ids === last.ids) tally.result.blocking.unchanged++;
        last = woken;
      } catch (error) {
        if (ended.signal.aborted) return;
        tally.fail(failureKind('blocking discover', error));
        // As a client backs off from a refusal, rather than hammering the server.
        await sleep(1000);
      }
    }
  });
  await sleep(deadline - performance.now());
  ended.abort();
  await Promise.all([tally.settled(), ...waiting]);
}

/** Plain discovers, infra and lieutenant in turn. */
async function discoverers(client: SwarmClient, tally: Tally, deadline: number): Promise<void> {
  let plain = 0;
  await steady(PLAIN_DISCOVERS_PER_SECOND, deadline, () => {
    const role = plain % 2 === 0 ? ONE_MATCH_ROLE : ONE_PERCENT_ROLE;
    plain++;
    tally.count('discover');
    void tally.track('discover', 'discover', () => client.discover(role, DISCOVER_AGENTS + plain));
  });
  await tally.settled();
}

/**
 * One heartbeat from each of the thread's first WARM_VMS VMs before the mix, not measured, so
 * that the mix starts with the connections a running swarm's agents already hold (for us
 * HTTP keep-alive sockets from every agent address, for etcd its clients' gRPC channels)
 * rather than opening them all in its first second.
 */
async function warmUp(client: SwarmClient, tally: Tally, { n, thread, threads }: PartSetup & { kind: 'writers' }): Promise<void> {
  const indices = Array.from({ length: Math.min(WARM_VMS, Math.ceil((n - thread) / threads)) }, (_, i) => thread + i * threads);
  await Promise.all(indices.map((index) => tally.track('warm-up heartbeat', undefined, () => client.heartbeat(vmId(index), roleOf(index), index))));
}

/** Opens this thread's watchers, in batches: a thousand connects at once would overflow the listen backlog and measure SYN retries. */
async function openWatchers(client: SwarmClient, tally: Tally, filters: { filter: WatchFilter; agent: number }[], watching: () => boolean) {
  const delivered = new Map<string, number[]>();
  const onEvent = (type: ChangeType, id: string) => {
    const key = `${type}:${id}`;
    const times = delivered.get(key);
    if (times) times.push(wallClock());
    else delivered.set(key, [wallClock()]);
  };
  const onGap = (why: string) => void (watching() && tally.fail(`watcher: ${why}`));
  const closers: (() => void)[] = [];
  const opened: WatchFilter[] = [];
  for (let i = 0; i < filters.length; i += 50) {
    await Promise.all(
      filters.slice(i, i + 50).map(async ({ filter, agent }) => {
        try {
          closers.push(await client.watch(filter, agent, onEvent, onGap));
          opened.push(filter);
        } catch (error) {
          tally.fail(failureKind('watcher refused', error));
        }
      }),
    );
  }
  return { opened, delivered, close: () => closers.forEach((close) => close()) };
}

/** How late this thread's timers fire, worst per slice into `lags`, of the mix that began at `began` (wall clock). */
function watchLag(lags: number[], began: number): () => void {
  let due = wallClock() + LAG_TICK_MS;
  const timer = setInterval(() => {
    const now = wallClock();
    const slice = Math.floor((now - began) / SLICE_MS);
    lags[slice] = Math.max(lags[slice] ?? 0, now - due);
    due = now + LAG_TICK_MS;
  }, LAG_TICK_MS);
  return () => clearInterval(timer);
}

const next = (type: ToPart['type']) =>
  new Promise<ToPart>((resolve) => {
    const listener = (message: ToPart) => {
      if (message.type !== type) return;
      parentPort!.off('message', listener);
      resolve(message);
    };
    parentPort!.on('message', listener);
  });

async function main(setup: PartSetup): Promise<PartResult> {
  const client = clientFor(setup.connection);
  const tally = new Tally();
  let watching = true;
  const watchers = setup.kind === 'watchers' ? await openWatchers(client, tally, setup.filters, () => watching) : undefined;
  if (setup.kind === 'writers') await warmUp(client, tally, setup);
  const firsts = setup.kind === 'blockers' ? await firstAnswers(client, tally) : [];
  const go = next('go');
  const finish = next('finish');
  parentPort!.postMessage({ type: 'ready', opened: watchers?.opened ?? [] } satisfies FromPart);
  const { began, deadline } = (await go) as ToPart & { type: 'go' };
  const localDeadline = deadline - performance.timeOrigin;
  const loopBefore = performance.eventLoopUtilization();
  const stopWatchingLag = watchLag(tally.result.loopLag, began);
  if (setup.kind === 'writers') await writers(client, tally, setup, localDeadline);
  else if (setup.kind === 'discoverers') await discoverers(client, tally, localDeadline);
  else if (setup.kind === 'blockers') await blockers(client, tally, firsts, localDeadline);
  else await sleep(localDeadline - performance.now());
  tally.result.loopBusy = performance.eventLoopUtilization(loopBefore).utilization;
  stopWatchingLag();
  await finish;
  if (watchers) {
    watching = false;
    watchers.close();
    tally.result.delivered = [...watchers.delivered];
  }
  client.close();
  return tally.result;
}

main(workerData as PartSetup).then(
  (result) => parentPort!.postMessage({ type: 'done', result } satisfies FromPart),
  (error: Error) => parentPort!.postMessage({ type: 'failed', message: error.stack ?? error.message } satisfies FromPart),
);
