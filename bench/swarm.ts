import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ONE_MATCH_ROLE, ONE_PERCENT_ROLE, roleOf, vmId } from './fixtures.js';
import { steady } from './pace.js';
import type { Usage } from './proc.js';
import type { PreloadResult } from './preload.js';
import type { Percentiles, SwarmRun } from './results.js';
import { percentile } from './sse.js';

/**
 * The swarm of issue 19, all at once for `seconds` over N preloaded VMs: heartbeats at N/60 a
 * second, 1% of the VMs a minute deregistered and as many registered, 0.5% a minute status
 * changes, 1,000 event watchers, 500 blocking discovers, and 10 plain discovers a second whose
 * latency is the discover figure. The same driver runs every contender (SwarmTarget).
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

/**
 * One contender, doing each of the swarm's operations in its own idiom. `agent` numbers the
 * agent doing it (a VM, a watcher, a discovering agent), for contenders that give agents
 * addresses or connections of their own. Operations throw SwarmFailure when refused.
 */
export interface SwarmTarget {
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
  usage(): Usage;
  /** The server's own count of blocking wake-ups and of those that found nothing new, if it keeps one. */
  wakeupCounters(): Promise<{ wakeups: number; unchanged: number } | undefined>;
  /** Why the contender is no longer running (a process exited), or undefined while it runs. */
  died(): string | undefined;
  /** Stops every process of the contender and deletes its data. */
  stop(): Promise<void>;
}

export const SWARM_WATCHERS = { [ONE_MATCH_ROLE]: 200, [ONE_PERCENT_ROLE]: 200, worker: 100, singleVm: 500 };
/** Blocking discovers: the roles agents wait on, infra (one VM) and lieutenants (1%). */
export const SWARM_BLOCKING = { [ONE_MATCH_ROLE]: 250, [ONE_PERCENT_ROLE]: 250 };
const PLAIN_DISCOVERS_PER_SECOND = 10;
/** After the mix, how long watchers may still deliver the last changes before undelivered ones count as gaps. */
const GRACE_MS = 5_000;
/** Agent numbers: VMs act from their own, watchers and discovering agents from numbers past every VM's. */
const WATCHER_AGENTS = 1_000_000;
const DISCOVER_AGENTS = 2_000_000;

const summary = (values: number[]): Percentiles => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: sorted.length };
};

const failureKind = (operation: string, error: unknown) =>
  `${operation}: ${error instanceof SwarmFailure ? error.kind : ((error as NodeJS.ErrnoException).code ?? (error as Error).message)}`;

export async function runSwarm(target: SwarmTarget, n: number, seconds: number, progress: (line: string) => void): Promise<Omit<SwarmRun, 'contender'>> {
  progress(`  preloading ${n.toLocaleString('en-US')} VMs…`);
  const preload = await target.preload(n);
  progress(`  preloaded in ${preload.seconds.toFixed(1)} s (${Math.round(preload.perSecond)}/s)`);

  const errors: Record<string, number> = {};
  const fail = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);

  // The VMs alive, for picking uniformly; the infra VM stays (agents block on it), as does its role's count.
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
  for (let i = 0; i < n; i++) add(vmId(i), roleOf(i), i);
  const randomLive = () => live[Math.floor(Math.random() * live.length)];
  const randomChangeable = (): string => {
    const id = randomLive();
    return id === vmId(0) && live.length > 1 ? randomChangeable() : id;
  };

  // Changes acknowledged, by `${type}:${id}`, with how many watchers they concern; deliveries likewise.
  const acknowledged = new Map<string, { at: number; expected: number }>();
  const delivered = new Map<string, number[]>();
  const watchersOf = { roles: new Map<string, number>(), ids: new Map<string, number>() };
  const concerned = (id: string, role: string) => (watchersOf.roles.get(role) ?? 0) + (watchersOf.ids.get(id) ?? 0);

  const closers: (() => void)[] = [];
  let watching = true;
  const onGap = (why: string) => void (watching && fail(`watcher: ${why}`));
  const filters: WatchFilter[] = [];
  for (const role of [ONE_MATCH_ROLE, ONE_PERCENT_ROLE, 'worker'] as const) {
    for (let i = 0; i < SWARM_WATCHERS[role]; i++) filters.push({ role });
  }
  for (let i = 0; i < SWARM_WATCHERS.singleVm; i++) {
    const id = randomChangeable();
    filters.push({ role: roles.get(id)!, id });
  }
  progress(`  opening ${filters.length} watchers…`);
  // In batches: a thousand connects at once would overflow the listen backlog and measure SYN retries.
  for (let i = 0; i < filters.length; i += 100) {
    const batch = filters.slice(i, i + 100).map(async (filter, j) => {
      const onEvent = (type: ChangeType, id: string) => {
        const key = `${type}:${id}`;
        const times = delivered.get(key);
        if (times) times.push(performance.now());
        else delivered.set(key, [performance.now()]);
      };
      try {
        closers.push(await target.watch(filter, WATCHER_AGENTS + i + j, onEvent, onGap));
        if (filter.id) watchersOf.ids.set(filter.id, (watchersOf.ids.get(filter.id) ?? 0) + 1);
        else watchersOf.roles.set(filter.role, (watchersOf.roles.get(filter.role) ?? 0) + 1);
      } catch (error) {
        fail(failureKind('watcher refused', error));
      }
    });
    await Promise.all(batch);
  }

  const latency = { heartbeat: [] as number[], register: [] as number[], discover: [] as number[] };
  const sent = { heartbeat: 0, register: 0, deregister: 0, status: 0, discover: 0, blocking: 0 };
  // A VM's requests in flight: it is deregistered only once they are answered, as its own agent would.
  const inFlight = new Map<string, Promise<unknown>>();
  const pending = new Set<Promise<unknown>>();
  const track = <T>(id: string | undefined, work: Promise<T>) => {
    const settled = work.catch(() => undefined);
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
    if (id !== undefined) inFlight.set(id, Promise.all([inFlight.get(id), settled]));
    return work;
  };
  const timed = async (into: number[] | undefined, work: () => Promise<unknown>) => {
    const began = performance.now();
    await work();
    into?.push(performance.now() - began);
  };
  const change = (type: ChangeType, id: string, role: string) => {
    acknowledged.set(`${type}:${id}`, { at: performance.now(), expected: concerned(id, role) });
  };
  let registered = 0;
  const statusChanged = new Set<string>();

  const began = performance.now();
  const deadline = began + seconds * 1000;
  const before = target.usage();
  const serverBefore = await target.wakeupCounters();
  progress(`  swarm for ${seconds} s…`);

  const operations = [
    steady(n / 60, deadline, () => {
      const id = randomLive();
      sent.heartbeat++;
      void track(id, timed(latency.heartbeat, () => target.heartbeat(id, roles.get(id)!, agents.get(id)!))).catch((e) => fail(failureKind('heartbeat', e)));
    }),
    steady((n * 0.01) / 60, deadline, () => {
      const id = randomChangeable();
      const role = roles.get(id)!;
      remove(id);
      sent.deregister++;
      void track(undefined, (async () => {
        await inFlight.get(id);
        await target.deregister(id, role, agents.get(id)!);
        inFlight.delete(id);
        change('deregistered', id, role);
      })()).catch((e) => fail(failureKind('deregister', e)));
    }),
    steady((n * 0.01) / 60, deadline, () => {
      const index = registered++;
      const id = `swarm-new-${index.toString().padStart(6, '0')}`;
      // The same mix of roles as the preload, never a second infra VM.
      const role = roleOf(index + 1);
      sent.register++;
      // A new VM's agent is the one that registered it, as with the preloaded ones.
      void track(id, timed(latency.register, () => target.register(id, role, n + index)))
        .then(() => {
          change('registered', id, role);
          add(id, role, n + index);
        })
        .catch((e) => fail(failureKind('register', e)));
    }),
    steady((n * 0.005) / 60, deadline, () => {
      const id = randomChangeable();
      // Each VM changes status once at most, so that its event is the only one of its kind.
      if (statusChanged.has(id)) return;
      statusChanged.add(id);
      sent.status++;
      void track(id, timed(undefined, () => target.setStatus(id, roles.get(id)!, 'paused', agents.get(id)!)))
        .then(() => change('updated', id, roles.get(id)!))
        .catch((e) => fail(failureKind('status', e)));
    }),
    steady(PLAIN_DISCOVERS_PER_SECOND, deadline, () => {
      const role = sent.discover % 2 === 0 ? ONE_MATCH_ROLE : ONE_PERCENT_ROLE;
      sent.discover++;
      void track(undefined, timed(latency.discover, () => target.discover(role, DISCOVER_AGENTS + sent.discover))).catch((e) =>
        fail(failureKind('discover', e)),
      );
    }),
  ];

  const ended = new AbortController();
  // Every blocking discover listens for the end of the run.
  setMaxListeners(0, ended.signal);
  const blocking = { wakeups: 0, unchanged: 0 };
  const blockers = Object.entries(SWARM_BLOCKING).flatMap(([role, count]) =>
    Array.from({ length: count }, async (_, i) => {
      const agent = DISCOVER_AGENTS + 500_000 + (role === ONE_MATCH_ROLE ? 0 : 1000) + i;
      let last: Answer | undefined;
      while (performance.now() < deadline) {
        try {
          last ??= await target.discover(role, agent);
          sent.blocking++;
          const answer = await target.waitForChange(role, last, agent, ended.signal);
          if (answer === 'timeout' || performance.now() >= deadline) continue;
          blocking.wakeups++;
          if (answer.ids === last.ids) blocking.unchanged++;
          last = answer;
        } catch (error) {
          if (ended.signal.aborted) return;
          fail(failureKind('blocking discover', error));
          // As a client backs off from a refusal, rather than hammering the server.
          await sleep(1000);
        }
      }
    }),
  );

  await Promise.all(operations);
  const died = target.died();
  if (died) {
    progress(`  ${died}`);
    fail(died);
  }
  const after = target.usage();
  const serverAfter = await target.wakeupCounters();
  const elapsed = (performance.now() - began) / 1000;
  ended.abort();
  progress(`  mix done; waiting for answers and deliveries…`);
  await Promise.all([Promise.all(pending), Promise.all(blockers)]);
  await sleep(GRACE_MS);
  watching = false;
  for (const close of closers) close();

  const lags: number[] = [];
  let expected = 0;
  for (const [key, { at, expected: concernedWatchers }] of acknowledged) {
    expected += concernedWatchers;
    const times = delivered.get(key) ?? [];
    // An event may reach a watcher before the writer has read its answer: that is no lag at all.
    for (const time of times) lags.push(Math.max(0, time - at));
    const missing = concernedWatchers - times.length;
    if (missing > 0) errors['event gap: deliveries missing'] = (errors['event gap: deliveries missing'] ?? 0) + missing;
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
    errors,
  };
}
