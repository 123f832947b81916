import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SwarmSlice } from './results.js';
import { percentile } from './sse.js';
import type { ServerMetrics, SwarmServer } from './swarm.js';
import type { PartResult } from './swarm-worker.js';

/**
 * The mix cut into slices of time, to tell *when* slow answers happen and *where* their time
 * goes: a tail that sits in the first seconds (watchers and blocking discovers connecting, each
 * blocking discover's first answer) reads differently from one that recurs (a checkpoint, a
 * batch flush, a collection), and the server's own view of the same slice (its event loop's
 * delay, its CPU, its count of slow heartbeats) against the load generator's (its threads' loop
 * lag) says whether the time went in the server, in the generator, or between them.
 */

export const SLICE_MS = 5_000;
/** A request slower than this counts as slow, at the client and at the server alike. */
export const SLOW_MS = 1_000;

/** What the server and its processes said at the end of one slice. */
interface ServerSample {
  at: number;
  listenOverflows?: number;
  cpuSeconds: number;
  rssMb: number;
  metrics?: ServerMetrics;
}

/**
 * Connections the kernel dropped because a listening socket's accept queue was full, machine
 * wide (Linux's TcpExt ListenOverflows): each costs its client a SYN retry, 1 s and then 3 s.
 */
export function listenOverflows(): number | undefined {
  try {
    const [names, values] = readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('TcpExt:'))
      .map((line) => line.split(' '));
    const at = names.indexOf('ListenOverflows');
    return at < 0 ? undefined : Number(values[at]);
  } catch {
    return undefined;
  }
}

/**
 * Samples the contender every slice until `deadline` (wall clock, ms). Each scrape of the
 * server's metrics is one more request to it, the same for every slice and every run.
 */
export async function sampleServer(server: SwarmServer, began: number, deadline: number): Promise<ServerSample[]> {
  const samples: ServerSample[] = [];
  for (let from = began; from < deadline; from += SLICE_MS) {
    const end = Math.min(from + SLICE_MS, deadline);
    await sleep(Math.max(0, end - Date.now()));
    const usage = server.usage();
    samples.push({ at: end, listenOverflows: listenOverflows(), cpuSeconds: usage.cpuSeconds, rssMb: usage.rssMb, metrics: await server.serverMetrics() });
  }
  return samples;
}

/**
 * The server's metrics over the whole mix from its samples: its counters as of the last, and
 * its event loop's delay as the worst slice's, since the server reports the delay since it was
 * last asked (the max is then the mix's max; the p99 is the worst slice's p99).
 */
export function overall(samples: ServerSample[]): ServerMetrics | undefined {
  const last = samples.at(-1)?.metrics;
  if (!last) return undefined;
  const delays = samples.map((sample) => sample.metrics?.loopDelay ?? { p99Ms: 0, maxMs: 0 });
  return { ...last, loopDelay: { p99Ms: Math.max(...delays.map((d) => d.p99Ms)), maxMs: Math.max(...delays.map((d) => d.maxMs)) } };
}

/**
 * Folds the threads' requests and the server's samples into slices; each thread's loopLag (its
 * timers' worst lateness per slice) is the generator's own stall, which counts in every latency
 * it measures.
 */
export function slicesOf(parts: PartResult[], samples: ServerSample[], began: number, start: { cpuSeconds: number; slowHeartbeats?: number; listenOverflows?: number }): SwarmSlice[] {
  const slices: SwarmSlice[] = [];
  const latencies = (kind: keyof PartResult['latency'], slice: number) =>
    parts
      .flatMap(({ latency, sentAt }) => (latency[kind] ?? []).filter((_, i) => Math.floor((sentAt[kind]![i] - began) / SLICE_MS) === slice))
      .sort((a, b) => a - b);
  let cpuBefore = start.cpuSeconds;
  let slowBefore = start.slowHeartbeats;
  let overflowsBefore = start.listenOverflows;
  for (let slice = 0; slice < samples.length; slice++) {
    const sample = samples[slice];
    const heartbeats = latencies('heartbeat', slice);
    const register = latencies('register', slice);
    const discover = latencies('discover', slice);
    slices.push({
      fromSeconds: (slice * SLICE_MS) / 1000,
      toSeconds: (sample.at - began) / 1000,
      heartbeats: heartbeats.length,
      heartbeat: { p99: percentile(heartbeats, 99), max: heartbeats.at(-1) ?? 0 },
      slowAtClient: heartbeats.filter((latency) => latency > SLOW_MS).length,
      slowAtServer: sample.metrics?.slowHeartbeats !== undefined && slowBefore !== undefined ? sample.metrics.slowHeartbeats - slowBefore : undefined,
      registerMaxMs: register.at(-1) ?? 0,
      discoverMaxMs: discover.at(-1) ?? 0,
      serverCpuPercent: ((sample.cpuSeconds - cpuBefore) / ((sample.at - began) / 1000 - (slice * SLICE_MS) / 1000)) * 100,
      serverRssMb: sample.rssMb,
      serverLoopDelayMaxMs: sample.metrics?.loopDelay.maxMs,
      listenOverflows: sample.listenOverflows !== undefined && overflowsBefore !== undefined ? sample.listenOverflows - overflowsBefore : undefined,
      generatorLagMaxMs: Math.max(0, ...parts.map((part) => part.loopLag[slice] ?? 0)),
    });
    cpuBefore = sample.cpuSeconds;
    slowBefore = sample.metrics?.slowHeartbeats;
    overflowsBefore = sample.listenOverflows;
  }
  return slices;
}
