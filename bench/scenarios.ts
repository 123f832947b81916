import { ONE_MATCH_ROLE, ONE_PERCENT_ROLE, randomPreloadedId, registration } from './fixtures.js';

/** The target for a scenario, so the table can say whether it is met. */
export type Target = { minRatio: number } | { maxP99Ms: number };

export interface RequestShape {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  body?: string;
}

/** A request/response hot path driven by autocannon against ours and its ceiling. */
export interface HttpScenario {
  kind: 'http';
  name: string;
  what: string;
  target: Target;
  expectStatus: number;
  /** Fewer connections than the run's, for answers so large that 32 in flight only measure a queue. */
  connections?: number;
  /** The next request to send; called for every request, so ids can vary. */
  next(): RequestShape;
}

/** The 1,000-watcher fan-out of GET /registry/events, driven by bench/sse.ts. */
export interface SseScenario {
  kind: 'sse';
  name: string;
  what: string;
  target: Target;
  watchers: number;
}

export type Scenario = HttpScenario | SseScenario;

const PATCH_BODY = JSON.stringify({ metadata: { task: 'process invoices', swarm: 'bench', patched: true } });

/**
 * Reads first, then writes, then the fan-out: PATCH keeps the set of VMs intact, and
 * register adds VMs, so it comes after every scenario whose answer depends on N (run.ts
 * places it after the restart measurement too).
 */
export function scenarios(n: number): Scenario[] {
  let registered = 0;
  return [
    {
      kind: 'http',
      name: 'heartbeat',
      what: 'POST /registry/vms/:id/heartbeat, random preloaded id',
      target: { minRatio: 0.75 },
      expectStatus: 200,
      next: () => ({ method: 'POST', path: `/registry/vms/${randomPreloadedId(n)}/heartbeat` }),
    },
    {
      kind: 'http',
      name: 'get',
      what: 'GET /registry/vms/:id, random preloaded id',
      target: { minRatio: 0.75 },
      expectStatus: 200,
      next: () => ({ method: 'GET', path: `/registry/vms/${randomPreloadedId(n)}` }),
    },
    {
      kind: 'http',
      name: 'discover-one',
      what: `GET /registry/discover/${ONE_MATCH_ROLE}: 1 match among N`,
      target: { minRatio: 0.75 },
      expectStatus: 200,
      next: () => ({ method: 'GET', path: `/registry/discover/${ONE_MATCH_ROLE}` }),
    },
    {
      kind: 'http',
      name: 'discover-1%',
      what: `GET /registry/discover/${ONE_PERCENT_ROLE}: N/100 matches`,
      target: { minRatio: 0.5 },
      expectStatus: 200,
      next: () => ({ method: 'GET', path: `/registry/discover/${ONE_PERCENT_ROLE}` }),
    },
    {
      kind: 'http',
      name: 'list-running',
      what: 'GET /registry/vms?status=running: all N (4 connections)',
      target: { minRatio: 0.5 },
      expectStatus: 200,
      // At 100k each answer is ~36 MB and takes seconds; 32 in flight would leave a backlog of
      // minutes behind every run. Throughput, which the ratio compares, is the same with 4.
      connections: 4,
      next: () => ({ method: 'GET', path: '/registry/vms?status=running' }),
    },
    {
      kind: 'http',
      name: 'patch',
      what: 'PATCH /registry/vms/:id metadata, random preloaded id (committed write)',
      target: { minRatio: 0.5 },
      expectStatus: 200,
      next: () => ({ method: 'PATCH', path: `/registry/vms/${randomPreloadedId(n)}`, body: PATCH_BODY }),
    },
    {
      kind: 'sse',
      name: 'sse-fanout',
      what: '1,000 watchers on GET /registry/events; latency from PATCH sent to event delivered',
      target: { maxP99Ms: 50 },
      watchers: 1000,
    },
    {
      kind: 'http',
      name: 'register',
      what: 'POST /registry/vms, a new id each time (committed write)',
      target: { minRatio: 0.5 },
      expectStatus: 201,
      next: () => {
        const id = `bench-new-${(registered++).toString().padStart(7, '0')}`;
        return { method: 'POST', path: '/registry/vms', body: registration(id, 'worker') };
      },
    },
  ];
}
