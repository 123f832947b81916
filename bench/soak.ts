import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { randomPreloadedId } from './fixtures.js';
import { closeConnections, send } from './http.js';
import { steady } from './pace.js';
import { preload } from './preload.js';
import { residentMb, startRegistry } from './registry.js';

/**
 * Soak: minutes of mixed load on one server — VMs heartbeating, agents discovering, watchers
 * connecting and dropping — sampling what would betray a leak: resident memory, event-loop
 * delay, open file descriptors, and the server's own count of watchers and waiting queries.
 * The figures are for people to read (a table, first sample against last); no pass or fail.
 *
 *   npm run soak -- --minutes 3 --vms 10000
 */
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    vms: { type: 'string', default: '10000' },
    // Heartbeats a second across the swarm: 10,000 VMs every 10 s, time compressed 12-fold against the 2 min convention.
    'heartbeat-rate': { type: 'string', default: '1000' },
    'discover-rate': { type: 'string', default: '100' },
    watchers: { type: 'string', default: '50' },
  },
});
const minutes = Number(values.minutes);
const vms = Number(values.vms);
const heartbeatRate = Number(values['heartbeat-rate']);
const discoverRate = Number(values['discover-rate']);
const watcherCount = Number(values.watchers);

interface Sample {
  second: number;
  rssMb: number | undefined;
  loopDelayP99Ms: number | undefined;
  fds: number;
  watchers: number;
  waiting: number;
  errors: number;
}

const registry = await startRegistry();
const { url, child } = registry.server;
const pid = child.pid!;
console.log(`preloading ${vms} VMs…`);
const loaded = await preload(url, vms, 32);
console.log(`preloaded at ${Math.round(loaded.perSecond)}/s; soaking for ${minutes} min`);

const deadline = performance.now() + minutes * 60_000;
let errors = 0;
const count = (promise: Promise<{ status: number }>) =>
  promise.then((answer) => void (answer.status >= 400 && errors++), () => void errors++);

/** A watcher that stays between 1 and 10 s, then leaves without a word, and comes back. */
async function churningWatcher(): Promise<void> {
  while (performance.now() < deadline) {
    const stream = request(`${url}/registry/events`);
    stream.on('response', (response) => response.resume());
    stream.on('error', () => undefined);
    stream.end();
    await sleep(1000 + Math.random() * 9000);
    stream.destroy();
  }
}

async function loopDelayP99(): Promise<number | undefined> {
  const answer = await send(`${url}/metrics`, 'GET').catch(() => undefined);
  const line = answer?.body.toString().match(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m);
  return line ? Number(line[1]) * 1000 : undefined;
}

async function sample(began: number): Promise<Sample> {
  const health = JSON.parse((await send(`${url}/health`, 'GET')).body.toString()) as { watchers: number; waiting: number };
  return {
    second: Math.round((performance.now() - began) / 1000),
    rssMb: residentMb(pid),
    loopDelayP99Ms: await loopDelayP99(),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    watchers: health.watchers,
    waiting: health.waiting,
    errors,
  };
}

const revision = Number((await send(`${url}/registry/vms?role=golden`, 'GET')).headers['x-registry-index']);
const began = performance.now();
const samples: Sample[] = [await sample(began)];
const load = [
  steady(heartbeatRate, deadline, () => void count(send(`${url}/registry/vms/${randomPreloadedId(vms)}/heartbeat`, 'POST'))),
  steady(discoverRate, deadline, () => void count(send(`${url}/registry/discover/infra`, 'GET'))),
  // Blocking queries at the current revision: heartbeats make none, so each waits its 3 s out
  // and waiters come and go too.
  steady(5, deadline, () => void count(send(`${url}/registry/discover/lieutenant?index=${revision}&wait=3s`, 'GET'))),
  ...Array.from({ length: watcherCount }, churningWatcher),
];
const sampler = (async () => {
  while (performance.now() < deadline) {
    await sleep(10_000);
    samples.push(await sample(began));
  }
})();
await Promise.all([...load, sampler]);
await sleep(12_000); // lets the last watchers and blocking queries drain before the final reading
samples.push(await sample(began));

console.table(samples);
const [first, last] = [samples[1] ?? samples[0], samples[samples.length - 1]];
console.log(
  `RSS ${first.rssMb} → ${last.rssMb} MB, event-loop p99 ${first.loopDelayP99Ms?.toFixed(1)} → ${last.loopDelayP99Ms?.toFixed(1)} ms, ` +
    `fds ${first.fds} → ${last.fds}, watchers ${last.watchers}, waiting ${last.waiting}, failed requests ${errors}`,
);
closeConnections();
await registry.dispose();
