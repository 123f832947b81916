import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SETTINGS } from '../src/server/settings.js';
import { startPostgres, type PostgresCluster } from '../test/support/postgres.js';
import { startServer, tempDir, type ServerProcess } from '../test/support/server-process.js';

/** Our server as `vm-registry serve` runs it, over a SQLite file in a temporary directory. */
export interface Registry {
  server: ServerProcess;
  /** Every replica: `server` and, for the swarm on PostgreSQL, the others over the same database. */
  replicas: ServerProcess[];
  /** The PostgreSQL cluster, with --pg: its processes' CPU and memory count as the server's. */
  cluster?: PostgresCluster;
  /** Stops the server cleanly and starts it again over the same file, with these settings changed; ms until it listened. */
  restart(settings?: Settings): Promise<number>;
  /** Stops the server and deletes the database. */
  dispose(): Promise<void>;
  /** On PostgreSQL: CPU seconds the whole cluster (postmaster and every backend) has used so far. */
  databaseCpuSeconds?(): number;
}

type Settings = Record<string, string | undefined>;

/**
 * The swarm's server: every setting at its default (whatever the environment the benchmark
 * was started from holds) except the store's and one shared token, as the seed's users run it.
 */
export interface SwarmServer {
  token: string;
  /** Servers over the one PostgreSQL database (1 on SQLite). */
  replicas: number;
}

const EVERY_SETTING_UNSET = Object.fromEntries(Object.values(SETTINGS).map((row) => [row.env, undefined]));

/**
 * `settings` are added to the environment the benchmark's server always gets, such as the
 * health checks'; with `swarm`, the server gets its defaults instead.
 */
export async function startRegistry(profileDir?: string, onPostgres = false, settings: Settings = {}, swarm?: SwarmServer): Promise<Registry> {
  let current = settings;
  const dir = tempDir('vm-registry-bench-');
  // The same cluster the tests use: on the same two cores, with fsync off, so its figures
  // are the CPU cost of the database round trips, not of a disk.
  const cluster = onPostgres ? await startPostgres() : undefined;
  const databaseUrl = cluster ? await cluster.createDatabase('bench') : undefined;
  const db = join(dir.path, 'registry.db');
  const swarmEnv = swarm && { ...EVERY_SETTING_UNSET, PORT: '0', REGISTRY_DB: db, DATABASE_URL: databaseUrl, VERS_AUTH_TOKEN: swarm.token };
  const start = () =>
    startServer({
      env: swarmEnv ?? {
        REGISTRY_DB: db,
        DATABASE_URL: databaseUrl,
        // Loopback, open, and no self-registration: a second infra VM would break discover-one.
        HOST: '127.0.0.1',
        VERS_AUTH_TOKEN: undefined,
        VERS_VM_ID: undefined,
        // A 100k run lasts longer than the default 5 minutes: preloaded VMs must not turn
        // stale halfway and shrink what discover and list return.
        REGISTRY_STALE_AFTER: '24h',
        // The load generator is one address driving tens of thousands of requests a second and
        // a thousand watchers. The limiter stays on, so that its cost is measured, with a
        // budget the run never spends.
        REGISTRY_RATE_LIMIT: '1000000000',
        REGISTRY_MAX_WATCHERS: '100000',
        // What an operator runs with: the cost of logging is part of what is measured.
        LOG_LEVEL: 'info',
        ...current,
      },
      nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      timeout: 120_000,
    });
  const first = await start();
  const others = await Promise.all(Array.from({ length: (swarm?.replicas ?? 1) - 1 }, start));
  let disposed = false;
  const registry: Registry = {
    server: first,
    replicas: [first, ...others],
    cluster,
    ...(cluster && { databaseCpuSeconds: () => clusterCpuSeconds(cluster.postmasterPid()) }),
    async restart(changes = {}) {
      current = { ...current, ...changes };
      await registry.server.stop();
      const began = performance.now();
      registry.server = await start();
      return performance.now() - began;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      // SIGTERM first: the server writes its CPU profile on a clean exit. SIGKILL if draining
      // in-flight requests takes longer than a benchmark should wait.
      const replicas = [registry.server, ...others];
      await Promise.race([Promise.all(replicas.map((r) => r.stop())), sleep(30_000, undefined, { ref: false })]);
      await Promise.all(replicas.map((r) => r.kill()));
      cluster?.destroy();
      dir.remove();
    },
  };
  return registry;
}

/** CPU seconds (user and system) of a process and its live children, from /proc (Linux). */
export function clusterCpuSeconds(postmaster: number): number {
  const ticksPerSecond = 100;
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command's closing parenthesis: state, ppid, …, utime (14th of the line), stime (15th).
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) === postmaster || Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process ended while being read.
    }
  }
  return ticks / ticksPerSecond;
}

/** Resident memory of a process in MB from /proc (Linux): VmRSS now, VmHWM the peak so far. */
export function residentMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  try {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

/**
 * RSS once the idle server has handed back what a burst of work grew. V8 shrinks its heap
 * some seconds after allocation stops (its memory reducer), not at once, so this polls each
 * second until the RSS has fallen by a tenth and then held for 5 s, or `maxSeconds` have passed.
 */
export async function settledResidentMb(pid: number, maxSeconds: number): Promise<{ mb?: number; seconds: number }> {
  const began = performance.now();
  const seconds = () => (performance.now() - began) / 1000;
  const start = residentMb(pid);
  let last = start;
  let heldSince = began;
  while (seconds() < maxSeconds && start !== undefined && last !== undefined) {
    await sleep(1000);
    const now = residentMb(pid);
    if (now === undefined || Math.abs(now - last) > 1) heldSince = performance.now();
    else if (now < start * 0.9 && performance.now() - heldSince >= 5000) return { mb: now, seconds: seconds() };
    last = now;
  }
  return { mb: last, seconds: seconds() };
}
