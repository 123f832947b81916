#!/usr/bin/env node
/**
 * `npm run bench`: our server against the bare node:http ceiling, scenario by scenario,
 * at one registry size. See bench/options.ts for the flags and docs/performance.md for
 * what the figures mean.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cannedAnswer, startCeiling, type CannedAnswer } from './ceiling.js';
import { ONE_MATCH_ROLE, vmId } from './fixtures.js';
import { closeConnections, send } from './http.js';
import { drive, type RunResult } from './load.js';
import { benchHealthChecks, formatHealthResults, HEALTH_SCENARIO } from './health.js';
import { describeMachine } from './machine.js';
import { parseOptions, USAGE, type BenchOptions, type SwarmContender } from './options.js';
import { preload } from './preload.js';
import { residentMb, settledResidentMb, startRegistry, type Registry } from './registry.js';
import { judge, summarize, type BenchResults, type ScenarioResult } from './results.js';
import { scenarios, type HttpScenario, type Scenario, type SseScenario } from './scenarios.js';
import { fanOut, probeEvents } from './sse.js';
import { ETCD_MISSING, etcdVersion, startEtcd } from './swarm-etcd.js';
import { startOurs } from './swarm-ours.js';
import { runSwarm, type SwarmServer } from './swarm.js';
import type { SwarmResults, SwarmRun } from './results.js';
import { formatResults, formatSwarm } from './table.js';

const progress = (line: string) => process.stderr.write(`${line}\n`);
const fmt = (r: RunResult) => `${Math.round(r.rps)} rps, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.failed} failed`;

type Measure = (url: string, seconds: number) => Promise<RunResult>;

/**
 * Waits until our server has answered everything a run left in flight: requests still being
 * worked on when autocannon stops would otherwise steal the CPU from the next run, whichever
 * contender that is. A GET /health queued behind them is answered once they are done.
 */
async function settle(ours: string): Promise<void> {
  const answer = await send(`${ours}/health`, 'GET', undefined, { timeoutMs: 600_000 });
  if (answer.status !== 200) throw new Error(`GET /health answered ${answer.status} between runs`);
}

/** Warms both up, then runs ceiling, ours, ceiling, ours, … so drift of the machine lands on both. */
async function alternate(name: string, canned: CannedAnswer, ours: string, measure: Measure, options: BenchOptions) {
  const ceiling = await startCeiling(canned);
  const measureSettled = async (url: string, seconds: number) => {
    await settle(ours);
    return measure(url, seconds);
  };
  try {
    if (options.warmup > 0) {
      await measureSettled(ceiling.url, options.warmup);
      await measureSettled(ours, options.warmup);
    }
    const runs = { ceiling: [] as RunResult[], ours: [] as RunResult[] };
    for (let i = 1; i <= options.runs; i++) {
      for (const [contender, url] of [['ceiling', ceiling.url], ['ours', ours]] as const) {
        const result = await measureSettled(url, options.duration);
        runs[contender].push(result);
        progress(`  ${name.padEnd(13)} ${contender.padEnd(7)} run ${i}: ${fmt(result)}`);
      }
    }
    return runs;
  } finally {
    await ceiling.stop();
    await settle(ours);
  }
}

function scored(scenario: Scenario, runs: { ceiling: RunResult[]; ours: RunResult[] }): ScenarioResult {
  const ceiling = summarize(runs.ceiling);
  const ours = summarize(runs.ours);
  const ratio = ours.rps / ceiling.rps;
  return { name: scenario.name, what: scenario.what, target: scenario.target, runs, ceiling, ours, ratio, met: judge(scenario.target, ours, ratio) };
}

/** The scenarios compared side by side between a PostgreSQL replica and the embedded store. */
const READS = ['get', 'discover-one', 'discover-1%', 'list-running'];

async function measureHttp(scenario: HttpScenario, url: string, options: BenchOptions, databaseCpu?: () => number): Promise<ScenarioResult> {
  // The bytes the ceiling will send: one real answer of ours to this scenario's request.
  const { method, path, body } = scenario.next();
  const answer = await send(`${url}${path}`, method, body);
  if (answer.status !== scenario.expectStatus) {
    throw new Error(`${scenario.name}: ${method} ${path} answered ${answer.status}, expected ${scenario.expectStatus}: ${answer.body.toString().slice(0, 300)}`);
  }
  // The database's CPU is sampled around our runs only: during the ceiling's it idles anyway.
  const cpuPercents: number[] = [];
  const measure: Measure = async (target, seconds) => {
    if (target !== url || !databaseCpu) return drive(target, scenario, seconds, options.connections);
    const [cpuBefore, began] = [databaseCpu(), performance.now()];
    const result = await drive(target, scenario, seconds, options.connections);
    cpuPercents.push((100 * (databaseCpu() - cpuBefore)) / ((performance.now() - began) / 1000));
    return result;
  };
  const result = scored(scenario, await alternate(scenario.name, cannedAnswer(answer), url, measure, options));
  if (cpuPercents.length === 0) return result;
  // The warm-up run is left out: the first sample.
  const measured = cpuPercents.slice(options.warmup > 0 ? 1 : 0);
  return { ...result, databaseCpuPercent: measured.reduce((sum, value) => sum + value, 0) / measured.length };
}

async function measureSse(scenario: SseScenario, url: string, options: BenchOptions): Promise<ScenarioResult> {
  const vmPath = `/registry/vms/${vmId(options.n - 1)}`;
  const probe = await probeEvents(url, `${url}${vmPath}`);
  if ('skip' in probe) {
    progress(`  ${scenario.name}: skipped, ${probe.skip}`);
    return { name: scenario.name, what: scenario.what, target: scenario.target, skipped: probe.skip };
  }
  const measure: Measure = (target, seconds) => fanOut(target, vmPath, scenario.watchers, seconds);
  return scored(scenario, await alternate(scenario.name, cannedAnswer(probe.patch, probe.sse), url, measure, options));
}

/** A scenario that fails is reported as not measured, with the reason, and the others still run. */
async function measureScenario(scenario: Scenario, url: string, options: BenchOptions, databaseCpu?: () => number): Promise<ScenarioResult> {
  try {
    return await (scenario.kind === 'sse' ? measureSse(scenario, url, options) : measureHttp(scenario, url, options, databaseCpu));
  } catch (error) {
    const skipped = `failed: ${(error as Error).message}`;
    progress(`  ${scenario.name}: ${skipped}`);
    return { name: scenario.name, what: scenario.what, target: scenario.target, skipped };
  }
}

/** Restarts over the same file and times the first discover, as an agent recovering would see it. */
async function timeRestart(registry: Registry, n: number): Promise<BenchResults['restart']> {
  const listeningMs = await registry.restart();
  const began = performance.now();
  const answer = await send(`${registry.server.url}/registry/discover/${ONE_MATCH_ROLE}`, 'GET');
  if (answer.status !== 200) throw new Error(`discover after restart answered ${answer.status}`);
  return { listeningMs, firstDiscoverMs: listeningMs + (performance.now() - began), vms: n };
}

/**
 * The RSS of a server that holds the registry and is otherwise idle: the restarted one, after
 * a full listing has built every entry's JSON and a heartbeat has dropped that listing from the
 * cache, once V8 has given back what the work grew (see settledResidentMb). Measured apart from
 * the scenarios, which run on a server that has not idled: after its heap has shrunk, V8 runs
 * small requests 10–15% slower (three runs), and the ceiling's process never idles either.
 * Restarts again afterwards, so that the last scenario runs on a server like the others'.
 */
async function settleHolding(registry: Registry, rssMb: BenchResults['rssMb'], maxSeconds: number): Promise<void> {
  const { url } = registry.server;
  if ((await send(`${url}/registry/vms`, 'GET')).status !== 200) throw new Error('listing every VM failed');
  if ((await send(`${url}/registry/vms/${vmId(0)}/heartbeat`, 'POST')).status !== 200) throw new Error('a heartbeat failed');
  const settled = await settledResidentMb(registry.server.child.pid!, maxSeconds);
  rssMb.settled = settled.mb;
  rssMb.settledAfterSeconds = settled.seconds;
  progress(`server RSS ${rssMb.settled} MB holding the registry, idle ${settled.seconds.toFixed(0)} s`);
  await registry.restart();
}

async function bench(options: BenchOptions): Promise<BenchResults> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  progress(`machine: ${machine.cpu}, ${machine.cores} cores; vm-registry ${machine.commit}; N = ${options.n}; store ${options.pg ? 'PostgreSQL' : 'SQLite'}`);
  const chosen = scenarios(options.n).filter((s) => options.only.length === 0 || options.only.includes(s.name));
  const registry = await startRegistry(options.profile, options.pg);
  const stopOnSignal = () => void registry.dispose().finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
  try {
    const pid = () => registry.server.child.pid!;
    const rssMb: BenchResults['rssMb'] = { empty: residentMb(pid()) };
    progress(`preloading ${options.n} VMs with ${options.connections} concurrent registrations…`);
    const loaded = await preload(registry.server.url, options.n, options.connections);
    rssMb.preloaded = residentMb(pid());
    progress(`preloaded in ${loaded.seconds.toFixed(1)} s (${Math.round(loaded.perSecond)}/s); server RSS ${rssMb.preloaded} MB`);

    const results: ScenarioResult[] = [];
    // Register grows the registry, so it runs last, after the restart has been timed at N.
    const growing = chosen.filter((s) => s.name === 'register');
    const databaseCpu = registry.databaseCpuSeconds?.bind(registry);
    for (const scenario of chosen.filter((s) => !growing.includes(s))) {
      results.push(await measureScenario(scenario, registry.server.url, options, READS.includes(scenario.name) ? databaseCpu : undefined));
    }
    rssMb.afterScenarios = residentMb(pid());
    rssMb.peak = residentMb(pid(), 'VmHWM');
    const restart = await timeRestart(registry, options.n);
    progress(`restart: listening after ${Math.round(restart.listeningMs)} ms, first discover after ${Math.round(restart.firstDiscoverMs)} ms`);
    if (options.rssIdle > 0) await settleHolding(registry, rssMb, options.rssIdle);
    for (const scenario of growing) results.push(await measureScenario(scenario, registry.server.url, options));

    const { out: _out, ...recorded } = options;
    const reads = chosen.filter((s) => READS.includes(s.name));
    // One replica stopped before the embedded store starts: the two never share the cores.
    await registry.dispose();
    const embedded = options.pg && reads.length > 0 ? await embeddedReads(reads, options) : undefined;
    return { format: 1, startedAt, machine, options: recorded, preload: loaded, rssMb, restart, scenarios: results, embedded };
  } finally {
    process.off('SIGINT', stopOnSignal).off('SIGTERM', stopOnSignal);
    await registry.dispose();
    closeConnections();
  }
}

/**
 * The swarm, contender after contender on the same machine: ours on SQLite, etcd, and with
 * --pg ours on one and on two PostgreSQL replicas. Each starts fresh and is stopped before the
 * next, so that none runs on a machine another still loads.
 */
async function swarm(options: BenchOptions, save: (results: SwarmResults) => void): Promise<SwarmResults> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const { swarmVms: n, swarmSeconds: seconds } = options;
  progress(`machine: ${machine.cpu}, ${machine.cores} cores; vm-registry ${machine.commit}; swarm of N = ${n} for ${seconds} s`);
  const version = etcdVersion();
  const wanted = (contender: SwarmContender) => options.swarmOnly.length === 0 || options.swarmOnly.includes(contender);
  const ours = (onPostgres: boolean, replicas: number) => () => startOurs(onPostgres, replicas, options.profile);
  const contenders: { name: string; start?: () => Promise<SwarmServer>; skipped?: string }[] = [
    ...(wanted('ours') ? [{ name: 'ours, SQLite', start: ours(false, 1) }] : []),
    ...(wanted('etcd') ? [version ? { name: `etcd ${version}`, start: startEtcd } : { name: 'etcd', skipped: ETCD_MISSING }] : []),
    ...(options.pg && wanted('ours')
      ? [
          { name: 'ours, PostgreSQL ×1', start: ours(true, 1) },
          { name: 'ours, PostgreSQL ×2', start: ours(true, 2) },
        ]
      : []),
  ];
  const runs: SwarmRun[] = [];
  const results = (): SwarmResults => ({ format: 1, kind: 'swarm', startedAt, machine, options: { vms: n, seconds, pg: options.pg }, runs });
  for (const { name, start, skipped } of contenders) {
    progress(`${name}:`);
    if (!start) {
      progress(`  skipped: ${skipped}`);
      runs.push({ contender: name, skipped });
      continue;
    }
    const target = await start();
    const stopOnSignal = () => void target.stop().finally(() => process.exit(130));
    process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
    try {
      runs.push({ contender: name, ...(await runSwarm(target, n, seconds, progress)) });
    } catch (error) {
      progress(`  failed: ${(error as Error).message}`);
      runs.push({ contender: name, skipped: `failed: ${(error as Error).message}` });
    } finally {
      process.off('SIGINT', stopOnSignal).off('SIGTERM', stopOnSignal);
      await target.stop();
      closeConnections();
    }
    // A 100k run lasts many minutes: what is measured is kept even if a later contender fails.
    save(results());
  }
  return results();
}

/** The read scenarios on the embedded store at the same N, for the side-by-side comparison of a --pg run. */
async function embeddedReads(reads: Scenario[], options: BenchOptions): Promise<ScenarioResult[]> {
  progress(`the read scenarios again on the embedded SQLite store, N = ${options.n}…`);
  const registry = await startRegistry(undefined, false);
  try {
    await preload(registry.server.url, options.n, options.connections);
    const results: ScenarioResult[] = [];
    for (const scenario of reads) results.push(await measureScenario(scenario, registry.server.url, options));
    return results;
  } finally {
    await registry.dispose();
  }
}

const defaultOut = fileURLToPath(new URL('../../bench/results', import.meta.url));
let options: ReturnType<typeof parseOptions>;
try {
  options = parseOptions(process.argv.slice(2), defaultOut);
} catch (error) {
  process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}
/** Writes the results JSON beside earlier runs' and prints the table. */
function report(results: { startedAt: string }, table: string, kind = ''): void {
  const out = (options as BenchOptions).out;
  mkdirSync(out, { recursive: true });
  const file = join(out, `${results.startedAt.replace(/[:.]/g, '-')}${kind}-n${(options as BenchOptions).n}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${table}\nresults: ${file}\n`);
}

if (options === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else if (options.swarm) {
  mkdirSync(options.out, { recursive: true });
  const fileOf = (results: SwarmResults) => join(options.out, `${results.startedAt.replace(/[:.]/g, '-')}-swarm-n${results.options.vms}.json`);
  const save = (results: SwarmResults) => writeFileSync(fileOf(results), `${JSON.stringify(results, null, 2)}\n`);
  const results = await swarm(options, save);
  process.stdout.write(`${formatSwarm(results)}\nresults: ${fileOf(results)}\n`);
} else {
  // The health-check scenario restarts its own server with checks on and off, so it runs only when named.
  const others = options.only.filter((name) => name !== HEALTH_SCENARIO);
  if (options.only.length === 0 || others.length > 0) {
    const results = await bench({ ...options, only: others });
    report(results, formatResults(results));
  }
  if (options.only.includes(HEALTH_SCENARIO)) {
    const results = await benchHealthChecks(options);
    closeConnections();
    report(results, formatHealthResults(results), '-health');
  }
}
