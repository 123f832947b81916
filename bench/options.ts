import { parseArgs } from 'node:util';

export interface BenchOptions {
  /** How many VMs the registry holds while the scenarios run. */
  n: number;
  /** Seconds each measured run lasts. */
  duration: number;
  /** Seconds of unrecorded load before each contender's first run, so the JIT is warm for both. */
  warmup: number;
  /** Measured runs per contender and scenario; ceiling and ours alternate. */
  runs: number;
  connections: number;
  /** Scenario names to run; all when empty. */
  only: string[];
  /** At most this many idle seconds for a server holding the registry to settle its RSS; 0 skips. */
  rssIdle: number;
  /** Directory for the results JSON. */
  out: string;
  /** Directory for a CPU profile of our server (node --cpu-prof), or undefined. */
  profile?: string;
  /** Run on a throwaway PostgreSQL cluster instead of SQLite (with --swarm: as well, on one and on two replicas). */
  pg: boolean;
  /** The swarm of issue 19 (bench/swarm.ts) against etcd instead of the scenarios. */
  swarm: boolean;
  /** VMs preloaded for the swarm. */
  swarmVms: number;
  /** Seconds the swarm's mix lasts. */
  swarmSeconds: number;
  /** The swarm's contenders to run (`ours`, `etcd`); both when empty. */
  swarmOnly: SwarmContender[];
}

export const SWARM_CONTENDERS = ['ours', 'etcd'] as const;
export type SwarmContender = (typeof SWARM_CONTENDERS)[number];

export const USAGE = `Usage: npm run bench -- [options]

  --n <count>          VMs registered before the scenarios run (default 1000; 1000, 10000, 100000 are the reference sizes)
  --duration <s>       seconds per measured run (default 10, 2 with --quick)
  --warmup <s>         unrecorded seconds before each contender's runs (default 2, 0.5 with --quick)
  --runs <count>       measured runs per contender, ceiling and ours alternating (default 2, at least 2)
  --connections <c>    autocannon connections (default 32)
  --only <a,b>         run only these scenarios (names as printed in the table); health-checks runs only when
                       named: N VMs with a checked service each, heartbeats with checks off and on (use --n 10000)
  --rss-idle <s>       at most this many idle seconds for a server holding the registry to settle its RSS (default 45, 0 skips; 0 with --quick)
  --quick              short runs: a smoke test of the harness, not a measurement
  --out <dir>          where the results JSON goes (default bench/results)
  --profile <dir>      run our server under node --cpu-prof and write the profile there
  --pg                 store on a throwaway PostgreSQL cluster (the machine's PostgreSQL) instead of SQLite
  --swarm              instead of the scenarios, a swarm all at once, ours against etcd (see docs/performance.md);
                       on SQLite, and with --pg also on one and on two PostgreSQL replicas
  --swarm-vms <count>  VMs preloaded for the swarm (default 100000)
  --swarm-seconds <s>  how long the swarm's mix lasts (default 60)
  --swarm-only <a,b>   run only these contenders of the swarm: ours (SQLite, and PostgreSQL with --pg), etcd;
                       with --profile, our server runs under node --cpu-prof
  --help               this text`;

function positive(name: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be a positive ${integer ? 'whole ' : ''}number (got "${text}")`);
  }
  return value;
}

function contenders(text: string | undefined): SwarmContender[] {
  const names = text ? text.split(',').map((name) => name.trim()) : [];
  const unknown = names.find((name) => !(SWARM_CONTENDERS as readonly string[]).includes(name));
  if (unknown !== undefined) throw new Error(`--swarm-only takes ${SWARM_CONTENDERS.join(', ')} (got "${unknown}")`);
  return names as SwarmContender[];
}

/** Reads the command line; throws with a message naming the bad flag. */
export function parseOptions(args: string[], defaultOut: string): BenchOptions | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      n: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      runs: { type: 'string' },
      connections: { type: 'string' },
      only: { type: 'string' },
      'rss-idle': { type: 'string' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      profile: { type: 'string' },
      pg: { type: 'boolean' },
      swarm: { type: 'boolean' },
      'swarm-vms': { type: 'string' },
      'swarm-seconds': { type: 'string' },
      'swarm-only': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick ?? false;
  const runs = positive('runs', values.runs, 2, true);
  // One run each would let a burst of noise on this shared machine land on one contender only.
  if (runs < 2) throw new Error('--runs must be at least 2 so that ceiling and ours alternate');
  return {
    n: positive('n', values.n, 1000, true),
    duration: positive('duration', values.duration, quick ? 2 : 10, false),
    warmup: values.warmup === '0' ? 0 : positive('warmup', values.warmup, quick ? 0.5 : 2, false),
    runs,
    connections: positive('connections', values.connections, 32, true),
    rssIdle: values['rss-idle'] === '0' ? 0 : positive('rss-idle', values['rss-idle'], quick ? 0 : 45, false),
    only: values.only ? values.only.split(',').map((name) => name.trim()) : [],
    out: values.out ?? defaultOut,
    profile: values.profile,
    pg: values.pg ?? false,
    swarm: values.swarm ?? false,
    swarmVms: positive('swarm-vms', values['swarm-vms'], 100_000, true),
    swarmSeconds: positive('swarm-seconds', values['swarm-seconds'], 60, false),
    swarmOnly: contenders(values['swarm-only']),
  };
}
