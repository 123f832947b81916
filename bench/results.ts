import type { RunResult } from './load.js';
import type { Machine } from './machine.js';
import type { BenchOptions } from './options.js';
import type { PreloadResult } from './preload.js';
import type { Target } from './scenarios.js';

/** A contender's runs folded into one line of the table. */
export interface Summary {
  /** Means over the runs: with ceiling and ours alternating, drift lands on both. */
  rps: number;
  p50: number;
  p99: number;
  failed: number;
}

export interface ScenarioResult {
  name: string;
  what: string;
  target: Target;
  /** Why it was not measured; the other fields are then absent. */
  skipped?: string;
  runs?: { ceiling: RunResult[]; ours: RunResult[] };
  ceiling?: Summary;
  ours?: Summary;
  /** ours.rps / ceiling.rps */
  ratio?: number;
  met?: boolean;
  /** On PostgreSQL: the database cluster's CPU while ours ran, in % of one core (mean over the runs). */
  databaseCpuPercent?: number;
}

/** The JSON written to bench/results/<timestamp>.json; `format` changes when fields do. */
export interface BenchResults {
  format: 1;
  startedAt: string;
  machine: Machine;
  options: Omit<BenchOptions, 'out'>;
  preload: PreloadResult;
  /** Our server's resident memory in MB: empty, after the preload, after the scenarios, and its peak. */
  rssMb: {
    empty?: number;
    preloaded?: number;
    /** Holding the registry after a restart, idle until the RSS settled (see settleHolding in run.ts), and how long that took. */
    settled?: number;
    settledAfterSeconds?: number;
    afterScenarios?: number;
    peak?: number;
  };
  restart: { listeningMs: number; firstDiscoverMs: number; vms: number };
  scenarios: ScenarioResult[];
  /** With --pg: the read scenarios again on the embedded SQLite store, in the same run, for the side-by-side table. */
  embedded?: ScenarioResult[];
}

const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

export function summarize(runs: RunResult[]): Summary {
  return {
    rps: mean(runs.map((r) => r.rps)),
    p50: mean(runs.map((r) => r.p50)),
    p99: mean(runs.map((r) => r.p99)),
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
  };
}

export function judge(target: Target, ours: Summary, ratio: number): boolean {
  return 'minRatio' in target ? ratio >= target.minRatio : ours.p99 <= target.maxP99Ms;
}

/** p50 and p99 of one kind of request in the swarm, ms, and how many were measured. */
export interface Percentiles {
  p50: number;
  p99: number;
  count: number;
}

/** One contender's swarm (bench/swarm.ts): the same mix, the same N, the same machine. */
export interface SwarmRun {
  contender: string;
  /** Why it did not run (such as etcd not installed); the other fields are then absent. */
  skipped?: string;
  preload?: PreloadResult;
  seconds?: number;
  /** Requests sent during the mix, by kind, and the changes (register, deregister, status) among them. */
  sent?: Record<'heartbeat' | 'register' | 'deregister' | 'status' | 'discover' | 'blocking', number>;
  changes?: number;
  /**
   * CPU of every process of the contender over the mix, in % of one core, and per operation of
   * the mix (heartbeats, registrations, deregistrations, status changes, plain discovers: the
   * same for every contender; blocking re-asks, whose number is the contender's doing, are not
   * counted as operations but their cost is in the CPU).
   */
  cpuPercent?: number;
  cpuMsPerOperation?: number;
  /** Server RSS at the end of the mix (all replicas), and the database's PSS where there is one. */
  rssMb?: number;
  databaseMb?: number;
  latency?: { heartbeat: Percentiles; register: Percentiles; discover: Percentiles };
  /** From a change acknowledged to its event read by a watcher whose filter it concerns. */
  eventLag?: Percentiles & { expected: number };
  blocking?: {
    /** Answers to blocking discovers before their wait ran out, as the clients saw them. */
    wakeups: number;
    /** Of those, answers with the same set of VMs as the last one the client had. */
    unchanged: number;
    perChange: number;
    /** The server's own counters, where it has them (vm_registry_blocking_wakeups_*). */
    server?: { wakeups: number; unchanged: number };
  };
  /** The server's event loop delay over the mix (worst replica, worst slice for the p99), where the server reports it. */
  serverLoopDelay?: { p99Ms: number; maxMs: number };
  /**
   * The load generator's own CPU over the mix (all its threads, % of one core), and how busy the
   * busiest thread's event loop was: near 100%, the generator and not the contender set the pace.
   */
  generator?: { cpuPercent: number; threads: number; busiestLoopPercent: number };
  /** Every failure, by what failed and how: HTTP status, refused watcher, event gap, reset. */
  errors?: Record<string, number>;
  /** The mix slice by slice (bench/swarm-slices.ts): when the slow answers came, and what each side was doing. */
  slices?: SwarmSlice[];
}

/** One slice of the swarm's mix; requests count in the slice they were sent in. */
export interface SwarmSlice {
  fromSeconds: number;
  toSeconds: number;
  heartbeats: number;
  heartbeat: { p99: number; max: number };
  /** Heartbeats slower than SLOW_MS as the load generator measured them, and as the server did (its request histogram). */
  slowAtClient: number;
  slowAtServer?: number;
  registerMaxMs: number;
  discoverMaxMs: number;
  serverCpuPercent: number;
  serverRssMb: number;
  serverLoopDelayMaxMs?: number;
  /** Connections dropped machine-wide for a full accept queue (Linux TcpExt ListenOverflows): each a SYN retry, 1 s or more. */
  listenOverflows?: number;
  /** The worst lateness of a timer in any thread of the load generator: its own stalls. */
  generatorLagMaxMs: number;
}

export interface SwarmResults {
  format: 1;
  kind: 'swarm';
  startedAt: string;
  machine: Machine;
  options: { vms: number; seconds: number; pg: boolean };
  runs: SwarmRun[];
}
