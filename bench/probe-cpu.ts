/**
 * `npm run build && node dist/bench/probe-cpu.js [--checks 5000] [--rate 1000] [--concurrency 256]
 * [--rounds 3] [--probe "name=module.js" ...]`: the CPU one health check costs the checker,
 * measured alone. A bare node:http target answers 200 "ok" on 64 ports of 127.0.0.1 in a
 * process of its own (bench/health-target-server.ts); each contender runs in a fresh process
 * that makes `--checks` checks going round the ports, started at `--rate` a second as the
 * checker starts them (the health-checks scenario's 10,000 services every 10 s is 1,000/s;
 * `--rate 0` starts each as soon as one finishes), after a warm-up of a tenth as many
 * (connections opened, code compiled), and reports its own CPU time (user + system, every
 * thread) over the measured checks divided by their number. Contenders take turns, `--rounds`
 * times, so that a swing of a shared machine lands on each; the table gives the median.
 *
 * Contenders: undici's `request` with a body stream and an AbortSignal per check (the probe
 * as it was first written, kept here as the reference), the Prober of src/ (undici's dispatch
 * API), and any other module exporting a Prober of the same shape, given with --probe: the
 * plain-socket probe this one replaced is measured with
 *   git show 1af77a5:src/server/ops/health-probe.ts > /tmp/plain-socket-probe.ts
 *   npx esbuild /tmp/plain-socket-probe.ts --platform=node --format=esm --outfile=/tmp/plain-socket-probe.js
 *   node dist/bench/probe-cpu.js --probe "plain sockets (1af77a5)=/tmp/plain-socket-probe.js"
 */
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { HealthHostRule } from '../src/server/ops/health-hosts.js';
import { markdownTable } from './table.js';

const TIMEOUT_MS = 5_000;
const KEEP_ALIVE_MS = 60_000;
const BODY_CAP = 512;

/** What a child process is asked to measure: `module` undefined is undici's request. */
interface Job {
  module?: string;
  ports: number[];
  checks: number;
  concurrency: number;
  /** Checks started a second; 0: as fast as they finish. */
  rate: number;
}

interface Measured {
  cpuMicrosPerCheck: number;
  checksPerSecond: number;
  failed: number;
}

type Probe = (port: number) => Promise<boolean>;

function requestProbe(): Probe {
  const agent = new Agent({
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: KEEP_ALIVE_MS,
    connections: 4,
    headersTimeout: TIMEOUT_MS,
    bodyTimeout: TIMEOUT_MS,
    connect: { timeout: TIMEOUT_MS },
  });
  return async (port) => {
    const response = await agent.request({
      origin: `http://127.0.0.1:${port}`,
      path: '/health',
      method: 'GET',
      headers: { 'user-agent': 'vm-registry-health-check' },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    let read = 0;
    for await (const chunk of response.body) {
      read += (chunk as Buffer).length;
      if (read > BODY_CAP) break;
    }
    return response.statusCode >= 200 && response.statusCode < 300;
  };
}

async function proberProbe(module: string): Promise<Probe> {
  const { Prober } = (await import(pathToFileURL(resolvePath(module)).href)) as typeof import('../src/server/ops/health-probe.js');
  const prober = new Prober('http', TIMEOUT_MS, KEEP_ALIVE_MS, new HealthHostRule(['127.0.0.1'], []));
  return async (port) => (await prober.probe('127.0.0.1', port, '/health')).pass;
}

/**
 * `checks` checks going round the ports, at most `concurrency` at a time, started at `rate` a
 * second as the checker starts them (each due at its own time), or as fast as they finish
 * when `rate` is 0. Resolves with the number that failed.
 */
function run(probe: Probe, ports: number[], checks: number, concurrency: number, rate: number): Promise<number> {
  return new Promise((resolve) => {
    const began = performance.now();
    let started = 0;
    let done = 0;
    let inFlight = 0;
    let failed = 0;
    let timer: NodeJS.Timeout | undefined;
    const dispatch = () => {
      const due = rate === 0 ? checks : Math.min(checks, Math.floor(((performance.now() - began) / 1000) * rate) + 1);
      while (started < due && inFlight < concurrency) {
        inFlight++;
        void probe(ports[started++ % ports.length]).then((pass) => {
          inFlight--;
          if (!pass) failed++;
          if (++done === checks) {
            clearTimeout(timer);
            resolve(failed);
          } else dispatch();
        });
      }
      if (started < checks && rate > 0) timer ??= setTimeout(() => ((timer = undefined), dispatch()), 1);
    };
    dispatch();
  });
}

async function measure({ module, ports, checks, concurrency, rate }: Job): Promise<Measured> {
  const probe = module === undefined ? requestProbe() : await proberProbe(module);
  await run(probe, ports, Math.ceil(checks / 10), concurrency, rate);
  const cpu = process.cpuUsage();
  const began = performance.now();
  const failed = await run(probe, ports, checks, concurrency, rate);
  const seconds = (performance.now() - began) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  return { cpuMicrosPerCheck: (user + system) / checks, checksPerSecond: checks / seconds, failed };
}

function child(script: string, job: Job): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const contender = fork(script, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    contender.once('message', (measured) => {
      resolve(measured as Measured);
      contender.kill();
    });
    contender.once('exit', (code) => reject(new Error(`a contender's process exited (${code}) before reporting`)));
    contender.send(job);
  });
}

function startTarget(): Promise<{ ports: number[]; stop(): void }> {
  const target = fork(fileURLToPath(new URL('./health-target-server.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    target.once('message', (message) => resolve({ ports: (message as { ports: number[] }).ports, stop: () => target.kill('SIGTERM') }));
    target.once('exit', () => reject(new Error('the health-check target exited before listening')));
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      checks: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '256' },
      rate: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '3' },
      probe: { type: 'string', multiple: true, default: [] },
    },
  });
  const checks = Number(values.checks);
  const concurrency = Number(values.concurrency);
  const rate = Number(values.rate);
  const rounds = Number(values.rounds);
  const contenders: Array<{ name: string; module?: string }> = [
    { name: 'undici request (body stream, AbortSignal per check)' },
    ...values.probe.map((spec) => {
      const at = spec.indexOf('=');
      if (at < 1) throw new Error(`--probe "${spec}" is not name=module.js`);
      return { name: spec.slice(0, at), module: spec.slice(at + 1) };
    }),
    { name: 'undici dispatch (src/server/ops/health-probe.ts)', module: fileURLToPath(new URL('../src/server/ops/health-probe.js', import.meta.url)) },
  ];
  const loadAverage = loadavg().map((load) => load.toFixed(2)).join(' ');
  const target = await startTarget();
  const script = fileURLToPath(import.meta.url);
  const results = contenders.map(() => [] as Measured[]);
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [i, { name, module }] of contenders.entries()) {
        const measured = await child(script, { module, ports: target.ports, checks, concurrency, rate });
        process.stderr.write(`round ${round + 1}, ${name}: ${measured.cpuMicrosPerCheck.toFixed(1)} µs of CPU per check\n`);
        results[i].push(measured);
      }
    }
  } finally {
    target.stop();
  }
  const rows = [['probe', 'µs of CPU per check (median)', 'each round', 'checks/s (median)', 'failed']];
  for (const [i, { name }] of contenders.entries()) {
    const runs = results[i];
    rows.push([
      name,
      median(runs.map((r) => r.cpuMicrosPerCheck)).toFixed(1),
      runs.map((r) => r.cpuMicrosPerCheck.toFixed(1)).join(', '),
      Math.round(median(runs.map((r) => r.checksPerSecond))).toLocaleString('en-US'),
      String(runs.reduce((sum, r) => sum + r.failed, 0)),
    ]);
  }
  const pace = rate > 0 ? `started at ${rate.toLocaleString('en-US')}/s` : 'as fast as they finish';
  console.log(`${checks.toLocaleString('en-US')} checks per round, ${pace}, at most ${concurrency} in flight, ${target.ports.length} target ports; load average at start: ${loadAverage}\n`);
  console.log(markdownTable(rows).join('\n'));
}

if (process.argv.includes('--child')) {
  process.once('message', async (job) => {
    process.send!(await measure(job as Job));
  });
} else {
  await main();
}
