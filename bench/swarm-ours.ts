import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { IMPORT_LIMITS } from '../src/domain/schemas/import.js';
import { registration, roleOf, vmId } from './fixtures.js';
import { send, type Exchange } from './http.js';
import { postgresProcesses, usage } from './proc.js';
import { startRegistry } from './registry.js';
import { watch } from './sse.js';
import { SLOW_MS } from './swarm-slices.js';
import { SwarmFailure, type Answer, type ChangeType, type SwarmClient, type SwarmConnection, type SwarmServer } from './swarm.js';

/**
 * Our server in the swarm: default settings, auth on with one token every agent shares, as the
 * seed's users run it, over SQLite or over PostgreSQL with one or more replicas (agents spread
 * over them). Agents send from loopback addresses other than the server's, as agents on VMs of
 * their own would (the server's per-caller limits count per token and address): each watcher
 * and each blocking discover its own, VMs 250 hosts' worth, and plain discovers 50. The VMs
 * are preloaded as an operator moves a swarm over, through POST /registry/import, as many at
 * once as it takes.
 */

const VM_ADDRESSES = 250;
const DISCOVER_ADDRESSES = 50;
/**
 * Connections per address for requests (watchers have their own): enough for a host's VMs at
 * the swarm's rate, and few enough that a stalled server cannot make the load generator open
 * tens of thousands of sockets (the process has a limit on open files, as the server has).
 */
const SOCKETS_PER_ADDRESS = 16;
/** A loopback address for agent number `agent` (see SwarmTarget), outside 127.0.0.0/16 where servers listen. */
const addressOf = (agent: number) => {
  const slot =
    agent < 1_000_000
      ? agent % VM_ADDRESSES
      : agent < 2_000_000
        ? VM_ADDRESSES + (agent % 1_000_000)
        : agent < 2_500_000
          ? 5000 + (agent % DISCOVER_ADDRESSES)
          : 10_000 + (agent % 1_000_000);
  return `127.${64 + (slot >> 16)}.${(slot >> 8) & 255}.${slot & 255}`;
};

/** The ids of the VMs in a discover answer: enough to say whether a result changed (heartbeats move lastSeen, not the set). */
const idsOf = (body: Buffer) =>
  [...body.toString().matchAll(/"id":"([^"]+)"/g)]
    .map((match) => match[1])
    .sort()
    .join(',');

/** The index to re-ask with: X-Registry-Index where the server sends it, else the body's revision. */
function answerOf(exchange: Exchange): Answer {
  const header = exchange.headers['x-registry-index'];
  const index = header !== undefined ? Number(header) : (JSON.parse(exchange.body.toString()) as { revision: number }).revision;
  return { index, ids: idsOf(exchange.body) };
}

const expect = (what: string, exchange: Exchange, status: number) => {
  if (exchange.status !== status) throw new SwarmFailure(`HTTP ${exchange.status}`, `${what} answered ${exchange.status}: ${exchange.body.toString().slice(0, 200)}`);
  return exchange;
};

/** Sums a Prometheus counter over its labels; undefined when the server does not have it. */
function counter(text: string, name: string): number | undefined {
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((match) => Number(match[1]));
  return values.length === 0 ? undefined : values.reduce((sum, v) => sum + v, 0);
}

/** Heartbeats the server itself took longer than SLOW_MS over (its request histogram: all of them, less those within the bucket). */
function slowHeartbeats(text: string): number {
  const route = 'route="/registry/vms/:id/heartbeat"';
  const lines = text.split('\n').filter((line) => line.includes(route));
  const sum = (pick: (line: string) => boolean) => lines.filter(pick).reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return sum((line) => line.includes('_count{')) - sum((line) => line.includes(`le="${SLOW_MS / 1000}"`));
}

/** How long a blocking discover waits (the server's default); an answer after most of it is its wait running out. */
const WAIT_MS = 60_000;

/** `profileDir`: where each server process writes its CPU profile (node --cpu-prof), if anywhere. */
export async function startOurs(onPostgres: boolean, replicas: number, profileDir?: string): Promise<SwarmServer> {
  const token = randomBytes(24).toString('base64url');
  const registry = await startRegistry(profileDir, onPostgres, {}, { token, replicas });
  const urls = registry.replicas.map((server) => server.url);
  const database = () => (registry.cluster ? postgresProcesses(registry.cluster.port) : []);
  return {
    connection: { kind: 'ours', urls, token },
    stop: () => registry.dispose(),
    died() {
      const dead = registry.replicas.find((server) => server.child.exitCode !== null || server.child.signalCode !== null);
      if (!dead) return undefined;
      return `server exited (${dead.child.exitCode ?? dead.child.signalCode}): ${dead.output().trim().split('\n').slice(-3).join(' ')}`;
    },
    usage: () => usage(registry.replicas.map((server) => server.child.pid!), database()),
    async serverMetrics() {
      const scrapes = await Promise.all(urls.map(async (url) => (await send(`${url}/metrics`, 'GET', undefined, { token })).body.toString()));
      const sum = (name: string) => {
        const values = scrapes.map((text) => counter(text, name));
        return values.some((value) => value === undefined) ? undefined : values.reduce((total = 0, value) => total + value!, 0);
      };
      const worst = (name: string) => Math.max(...scrapes.map((text) => (counter(text, name) ?? 0) * 1000));
      const wakeups = sum('vm_registry_blocking_wakeups_total');
      const unchanged = sum('vm_registry_blocking_wakeups_unchanged_total');
      if (wakeups === undefined || unchanged === undefined) return undefined;
      const loopDelay = { p99Ms: worst('nodejs_eventloop_lag_p99_seconds'), maxMs: worst('nodejs_eventloop_lag_max_seconds') };
      return { wakeups, unchanged, loopDelay, slowHeartbeats: scrapes.reduce((total, text) => total + slowHeartbeats(text), 0) };
    },
  };
}

export function oursClient({ urls, token }: SwarmConnection & { kind: 'ours' }): SwarmClient {
  const urlOf = (agent: number) => urls[agent % urls.length];
  const pool = new Agent({ keepAlive: true, maxSockets: SOCKETS_PER_ADDRESS });
  const request = (agent: number, method: string, path: string, body?: string, signal?: AbortSignal) =>
    send(`${urlOf(agent)}${path}`, method, body, { token, localAddress: addressOf(agent), signal, agent: pool, timeoutMs: WAIT_MS + 30_000 });

  return {
    close: () => pool.destroy(),
    async preload(n) {
      const began = performance.now();
      for (let from = 0; from < n; from += IMPORT_LIMITS.vms) {
        const now = new Date().toISOString();
        const vms = Array.from({ length: Math.min(IMPORT_LIMITS.vms, n - from) }, (_, i) => ({
          ...JSON.parse(registration(vmId(from + i), roleOf(from + i))),
          registeredAt: now,
          lastSeen: now,
        }));
        expect(`importing VMs ${from}…`, await request(0, 'POST', '/registry/import', JSON.stringify({ vms })), 200);
      }
      const seconds = (performance.now() - began) / 1000;
      return { n, seconds, perSecond: n / seconds };
    },
    async register(id, role, agent) {
      expect(`register ${id}`, await request(agent, 'POST', '/registry/vms', registration(id, role)), 201);
    },
    async heartbeat(id, _role, agent) {
      expect(`heartbeat ${id}`, await request(agent, 'POST', `/registry/vms/${id}/heartbeat`), 200);
    },
    async setStatus(id, _role, status, agent) {
      expect(`status of ${id}`, await request(agent, 'PATCH', `/registry/vms/${id}`, JSON.stringify({ status })), 200);
    },
    async deregister(id, _role, agent) {
      expect(`deregister ${id}`, await request(agent, 'DELETE', `/registry/vms/${id}`), 200);
    },
    async discover(role, agent) {
      return answerOf(expect(`discover ${role}`, await request(agent, 'GET', `/registry/discover/${role}`), 200));
    },
    async waitForChange(role, after, agent, signal) {
      const began = performance.now();
      const exchange = expect(`blocking discover ${role}`, await request(agent, 'GET', `/registry/discover/${role}?index=${after.index}`, undefined, signal), 200);
      return performance.now() - began >= WAIT_MS - 1000 ? 'timeout' : answerOf(exchange);
    },
    async watch(filter, agent, onEvent, onGap) {
      let open = true;
      const query = filter.id === undefined ? `?role=${filter.role}` : `?id=${filter.id}`;
      const watcher = await watch(
        urlOf(agent),
        (frame) => {
          const type = /^event: (\w+)$/m.exec(frame)?.[1];
          if (type === 'reset') return onGap('reset');
          const id = /"vm":\{"id":"([^"]+)"/.exec(frame)?.[1];
          if (type !== undefined && id !== undefined) onEvent(type as ChangeType, id);
        },
        { query, token, localAddress: addressOf(agent), onClose: () => open && onGap('stream ended') },
      );
      if (watcher.status !== 200) {
        watcher.close();
        throw new SwarmFailure(`HTTP ${watcher.status}`);
      }
      return () => {
        open = false;
        watcher.close();
      };
    },
  };
}
