/**
 * `npm run build && node dist/bench/replica-memory.js [--n 100000] [--stores postgres,sqlite]
 * [--health-checks]`: what a server holding N VMs costs to start and to keep, on a PostgreSQL
 * replica and on the embedded SQLite store, side by side in one run. Each store is filled
 * through POST /registry/import (fast, so that N = 100,000 takes seconds), then its server is
 * restarted: the table gives the time until it listened and until its first discover answered,
 * with the start-up phases its log names, and its memory once a full listing has been built and
 * the idle process has settled (RSS, and the V8 heap and the memory outside it, from /metrics).
 * With --health-checks each server is restarted once more with checks on, for a second row:
 * every VM has a service to check, which the checker learns of at start.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { registration, roleOf, vmId, ONE_MATCH_ROLE } from './fixtures.js';
import { closeConnections, send } from './http.js';
import { residentMb, settledResidentMb, startRegistry, type Registry } from './registry.js';
import { markdownTable } from './table.js';

// One transaction each; a PostgreSQL import is a round trip per VM, so a batch takes seconds.
const BATCH = 5_000;
const SETTLE_SECONDS = 45;

interface Measured {
  store: string;
  listeningMs: number;
  firstDiscoverMs: number;
  /** ms from the process's first log line to each line that marks a start-up phase. */
  phases: Record<string, number>;
  rssMb?: number;
  heapUsedMb: number;
  externalMb: number;
}

/** Log lines that end a phase of start-up, by what they say. */
const PHASES: Record<string, string> = {
  "loaded this replica's copy of the registry": 'replica loaded',
  'vm-registry listening': 'listening',
};

async function fill(url: string, n: number): Promise<void> {
  const now = new Date().toISOString();
  for (let first = 0; first < n; first += BATCH) {
    const vms = [];
    for (let i = first; i < Math.min(n, first + BATCH); i++) vms.push({ ...JSON.parse(registration(vmId(i), roleOf(i))), registeredAt: now, lastSeen: now });
    const answer = await send(`${url}/registry/import`, 'POST', JSON.stringify({ vms }), { timeoutMs: 300_000 });
    if (answer.status !== 200) throw new Error(`import answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
  }
}

/** Milliseconds from the process's start to each phase-ending log line, given when it listened. */
function phasesOf(output: string, listeningMs: number): Record<string, number> {
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { time: number; msg: string });
  const times: Record<string, number> = {};
  for (const line of lines) if (PHASES[line.msg]) times[PHASES[line.msg]] = line.time;
  const started = times.listening - listeningMs;
  return Object.fromEntries(Object.entries(times).map(([phase, time]) => [phase, time - started]));
}

async function metricMb(url: string, name: string): Promise<number> {
  const text = (await send(`${url}/metrics`, 'GET')).body.toString();
  const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  return Math.round(Number(value) / 1024 / 1024);
}

/**
 * Checks on, spread over an interval longer than the measurement, so that probing does not
 * share the cores with what is measured more than the checker's start-up does.
 */
const HEALTH_CHECKS_ON = { REGISTRY_HEALTH_CHECKS: 'on', REGISTRY_HEALTH_INTERVAL: '10m' };

/** Restarts the filled server with `settings` changed and measures it. */
async function measure(registry: Registry, store: string, settings: Record<string, string> = {}): Promise<Measured> {
  const listeningMs = await registry.restart(settings);
  const began = performance.now();
  const discover = await send(`${registry.server.url}/registry/discover/${ONE_MATCH_ROLE}`, 'GET');
  if (discover.status !== 200) throw new Error(`discover after restart answered ${discover.status}`);
  const firstDiscoverMs = listeningMs + performance.now() - began;
  const phases = phasesOf(registry.server.output(), listeningMs);
  const { url } = registry.server;
  if ((await send(`${url}/registry/vms`, 'GET')).status !== 200) throw new Error('listing every VM failed');
  if ((await send(`${url}/registry/vms/${vmId(0)}/heartbeat`, 'POST')).status !== 200) throw new Error('a heartbeat failed');
  process.stderr.write(`${store}: restarted in ${Math.round(listeningMs)} ms; settling (RSS ${residentMb(registry.server.child.pid!)} MB)…\n`);
  const settled = await settledResidentMb(registry.server.child.pid!, SETTLE_SECONDS);
  // The metrics scrape itself allocates little; it is read after the RSS settled.
  await sleep(100);
  return {
    store,
    listeningMs,
    firstDiscoverMs,
    phases,
    rssMb: settled.mb,
    heapUsedMb: await metricMb(url, 'nodejs_heap_size_used_bytes'),
    externalMb: await metricMb(url, 'nodejs_external_memory_bytes'),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { n: { type: 'string', default: '100000' }, stores: { type: 'string', default: 'postgres,sqlite' }, 'health-checks': { type: 'boolean', default: false } },
  });
  const n = Number(values.n);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--n must be a positive whole number (got "${values.n}")`);
  const stores = values.stores.split(',');
  const unknown = stores.filter((store) => store !== 'postgres' && store !== 'sqlite');
  if (unknown.length > 0) throw new Error(`--stores takes postgres, sqlite or both, comma-separated (got "${unknown.join(',')}")`);
  const results: Measured[] = [];
  for (const onPostgres of [true, false]) {
    if (!stores.includes(onPostgres ? 'postgres' : 'sqlite')) continue;
    const store = onPostgres ? 'PostgreSQL replica' : 'SQLite';
    const registry = await startRegistry(undefined, onPostgres);
    try {
      process.stderr.write(`${store}: importing ${n} VMs…\n`);
      await fill(registry.server.url, n);
      results.push(await measure(registry, store));
      if (values['health-checks']) results.push(await measure(registry, `${store}, health checks on`, HEALTH_CHECKS_ON));
    } finally {
      await registry.dispose();
    }
  }
  const ms = (value: number | undefined) => (value === undefined ? '–' : String(Math.round(value)));
  console.log(`N = ${n}\n`);
  const header = ['store', 'listening ms', 'first discover ms', 'loaded its copy ms (log)', 'RSS settled MB', 'V8 heap used MB', 'external MB'];
  const rows = results.map((r) => [r.store, ms(r.listeningMs), ms(r.firstDiscoverMs), ms(r.phases['replica loaded']), ms(r.rssMb), ms(r.heapUsedMb), ms(r.externalMb)]);
  console.log(markdownTable([header, ...rows]).join('\n'));
  closeConnections();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
