/**
 * `npm run bench -- --only health-checks --n 10000`: what active health checks cost. Every
 * preloaded VM has one checked service, all pointing at a bare node:http target in its own
 * process; the registry restarts over the same file with checks off, then on, then off, then
 * on (so that drift of the shared machine lands on both), and each phase measures the server
 * idle for one interval, then the heartbeat scenario. With checks on it also reads, from
 * /metrics, the checks run and the overdue ones, and from /proc the server's CPU time.
 */
import { execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { send } from './http.js';
import { drive, type RunResult } from './load.js';
import { describeMachine, type Machine } from './machine.js';
import type { BenchOptions } from './options.js';
import { preload, type PreloadResult } from './preload.js';
import { startRegistry, type Registry } from './registry.js';
import { summarize, type Summary } from './results.js';
import { scenarios, type HttpScenario } from './scenarios.js';
import { markdownTable } from './table.js';

export const HEALTH_SCENARIO = 'health-checks';
/** The figures: checked every 10 s, and heartbeats within 10% of their rate without checks. */
const INTERVAL_S = 10;
const MIN_RATIO = 0.9;

/** The server's own counters, read from /metrics; all zero while checks are off. */
interface Counters {
  checks: number;
  failures: number;
  overdue: number;
  passing: number;
}

/** One stretch of time on one server: its CPU use and what its checker did meanwhile. */
export interface Window {
  seconds: number;
  /** Of one core: 100 is one core busy all the time. */
  cpuPercent: number;
  /** The same for the server's main thread alone: the event loop that answers the API. */
  mainThreadCpuPercent: number;
  checksPerSecond: number;
  failures: number;
  overdue: number;
}

export interface HealthPhase {
  checks: 'on' | 'off';
  /** The server left alone for one interval. */
  idle: Window;
  /** While the heartbeat scenario drives it. */
  loaded: Window;
  heartbeat: RunResult;
}

export interface HealthBenchResults {
  format: 1;
  startedAt: string;
  machine: Machine;
  options: Omit<BenchOptions, 'out'>;
  intervalSeconds: number;
  /** Ports of 127.0.0.1 the target listens on, the VMs' services spread over them. */
  targetPorts: number;
  /** 1–2 minute load average when the run began: the machine is shared, so the figures are ratios. */
  loadAverage: number[];
  preload: PreloadResult;
  phases: HealthPhase[];
  heartbeat: { off: Summary; on: Summary; ratio: number; minRatio: number; met: boolean };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * utime + stime in seconds, from /proc (Linux): of the whole process, or with `mainThread` of
 * its main thread alone (whose thread id is the pid), which runs the event loop.
 */
function cpuSeconds(pid: number, mainThread = false): number {
  // The command name, in parentheses, may hold spaces: count fields from after it.
  const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function counters(url: string): Promise<Counters> {
  const text = (await send(`${url}/metrics`, 'GET')).body.toString();
  const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
  return {
    checks: sum(/^vm_registry_health_checks_total\{[^}]*\} (\S+)$/gm),
    failures: sum(/^vm_registry_health_check_failures_total\{[^}]*\} (\S+)$/gm),
    overdue: sum(/^vm_registry_health_checks_overdue_total (\S+)$/gm),
    passing: sum(/^vm_registry_health_services\{status="passing"\} (\S+)$/gm),
  };
}

/** Measures `work` on the server: CPU time and counters before and after. */
async function measured<T>(registry: Registry, work: () => Promise<T>): Promise<{ window: Window; result: T }> {
  const { url, child } = registry.server;
  const sample = async () => ({ at: performance.now(), cpu: cpuSeconds(child.pid!), main: cpuSeconds(child.pid!, true), counters: await counters(url) });
  const before = await sample();
  const result = await work();
  const after = await sample();
  const seconds = (after.at - before.at) / 1000;
  return {
    result,
    window: {
      seconds,
      cpuPercent: (100 * (after.cpu - before.cpu)) / seconds,
      mainThreadCpuPercent: (100 * (after.main - before.main)) / seconds,
      checksPerSecond: (after.counters.checks - before.counters.checks) / seconds,
      failures: after.counters.failures - before.counters.failures,
      overdue: after.counters.overdue - before.counters.overdue,
    },
  };
}

/**
 * Once the checker has seen every service passing at the start of a round, the first checks
 * after the restart (and, the first time, the writes of unknown → passing) are behind it.
 */
async function untilAllPassing(url: string, n: number): Promise<void> {
  const deadline = performance.now() + 6 * INTERVAL_S * 1000;
  for (;;) {
    const { passing } = await counters(url);
    if (passing === n) return;
    if (performance.now() > deadline) throw new Error(`after ${6 * INTERVAL_S} s the checker saw ${passing} of ${n} services passing`);
    await sleep(500);
  }
}

/** The target every VM's service points at: node:http answering 200 on several ports, in its own process. */
async function startTarget(): Promise<{ ports: number[]; stop(): void }> {
  const child = fork(fileURLToPath(new URL('./health-target-server.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { ports } = await new Promise<{ ports: number[] }>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', () => reject(new Error('the health-check target exited before listening')));
  });
  return { ports, stop: () => child.kill('SIGTERM') };
}

export async function benchHealthChecks(options: BenchOptions): Promise<HealthBenchResults> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  progress(`health checks: N = ${options.n}, interval ${INTERVAL_S} s; load average ${loadAverage.join(' ')} on ${machine.cores} cores`);
  const heartbeat = scenarios(options.n).find((s): s is HttpScenario => s.name === 'heartbeat')!;
  const target = await startTarget();
  const registry = await startRegistry(options.profile, options.pg, {
    REGISTRY_HEALTH_CHECKS: 'off',
    REGISTRY_HEALTH_INTERVAL: `${INTERVAL_S}s`,
    // The target is on loopback, which the checker refuses unless named.
    REGISTRY_HEALTH_HOSTS: '127.0.0.1',
  });
  try {
    progress(`preloading ${options.n} VMs, each with pi-rpc on one of ${target.ports.length} ports of 127.0.0.1…`);
    const { ports } = target;
    const loaded = await preload(registry.server.url, options.n, options.connections, (i) => ({ address: '127.0.0.1', port: ports[i % ports.length] }));
    const phases: HealthPhase[] = [];
    for (let run = 1; run <= options.runs; run++) {
      for (const checks of ['off', 'on'] as const) {
        await registry.restart({ REGISTRY_HEALTH_CHECKS: checks });
        const { url } = registry.server;
        if (checks === 'on') await untilAllPassing(url, options.n);
        const idle = await measured(registry, () => sleep(INTERVAL_S * 1000));
        if (options.warmup > 0) await drive(url, heartbeat, options.warmup, options.connections);
        const load = await measured(registry, () => drive(url, heartbeat, options.duration, options.connections));
        phases.push({ checks, idle: idle.window, loaded: load.window, heartbeat: load.result });
        progress(
          `  checks ${checks.padEnd(3)} run ${run}: heartbeat ${Math.round(load.result.rps)} rps; ` +
            `idle CPU ${idle.window.cpuPercent.toFixed(1)}% (main thread ${idle.window.mainThreadCpuPercent.toFixed(1)}%), ${idle.window.checksPerSecond.toFixed(0)} checks/s; ` +
            `under load ${load.window.checksPerSecond.toFixed(0)} checks/s, ${load.window.overdue + idle.window.overdue} overdue`,
        );
      }
    }
    const of = (checks: 'on' | 'off') => summarize(phases.filter((p) => p.checks === checks).map((p) => p.heartbeat));
    const off = of('off');
    const on = of('on');
    const ratio = on.rps / off.rps;
    const { out: _out, ...recorded } = options;
    return {
      format: 1,
      startedAt,
      machine,
      options: recorded,
      intervalSeconds: INTERVAL_S,
      targetPorts: target.ports.length,
      loadAverage,
      preload: loaded,
      phases,
      heartbeat: { off, on, ratio, minRatio: MIN_RATIO, met: ratio >= MIN_RATIO },
    };
  } finally {
    await registry.dispose();
    target.stop();
  }
}

const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

/** The phases folded by checks on and off, as a Markdown table like the scenarios'. */
export function formatHealthResults(results: HealthBenchResults): string {
  const { machine, options, heartbeat, loadAverage } = results;
  const header = ['checks', 'heartbeat rps', 'p50 / p99 ms', 'checks/s idle', 'checks/s under load', 'overdue', 'failed checks', 'CPU % idle: all / main thread', 'CPU % under load: all / main thread'];
  const rows = (['off', 'on'] as const).map((checks) => {
    const phases = results.phases.filter((p) => p.checks === checks);
    const summary = heartbeat[checks];
    const total = (pick: (p: HealthPhase) => number) => String(phases.reduce((sum, p) => sum + pick(p), 0));
    return [
      checks,
      Math.round(summary.rps).toLocaleString('en-US'),
      `${summary.p50.toFixed(1)} / ${summary.p99.toFixed(1)}`,
      mean(phases.map((p) => p.idle.checksPerSecond)).toFixed(0),
      mean(phases.map((p) => p.loaded.checksPerSecond)).toFixed(0),
      total((p) => p.idle.overdue + p.loaded.overdue),
      total((p) => p.idle.failures + p.loaded.failures),
      `${mean(phases.map((p) => p.idle.cpuPercent)).toFixed(1)} / ${mean(phases.map((p) => p.idle.mainThreadCpuPercent)).toFixed(1)}`,
      `${mean(phases.map((p) => p.loaded.cpuPercent)).toFixed(0)} / ${mean(phases.map((p) => p.loaded.mainThreadCpuPercent)).toFixed(0)}`,
    ];
  });
  return [
    `vm-registry ${machine.commit}, health checks: N = ${options.n.toLocaleString('en-US')} VMs with one checked service each, ` +
      `every ${results.intervalSeconds} s, target node:http on ${results.targetPorts} ports of 127.0.0.1 in its own process; ${options.runs} × ${options.duration} s ` +
      `of heartbeats per setting, off and on alternating`,
    `machine: ${machine.cpu}, ${machine.cores} cores, load average ${loadAverage.join(' ')} at start (shared), node ${machine.node}`,
    '',
    ...markdownTable([header, ...rows]),
    '',
    `heartbeat ratio, checks on / off: ${heartbeat.ratio.toFixed(2)} (target ≥ ${heartbeat.minRatio}) ${heartbeat.met ? 'met' : 'MISSED'}; ` +
      `checks due: ${Math.round(options.n / results.intervalSeconds).toLocaleString('en-US')}/s; CPU % is of one core`,
  ].join('\n');
}
