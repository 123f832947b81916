import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse, type IDuplexStream } from 'etcd3';
import { freePort } from '../test/support/postgres.js';
import { tempDir } from '../test/support/server-process.js';
import { registration, roleOf, vmId } from './fixtures.js';
import { preloadWith } from './preload.js';
import { usage } from './proc.js';
import { SwarmFailure, type Answer, type SwarmClient, type SwarmConnection, type SwarmServer } from './swarm.js';

/**
 * etcd doing the same swarm in its own idioms: a key per VM, /vms/<role>/<id>, holding the
 * same JSON a registration sends, attached to a lease of its own (register = grant + put with
 * the lease; heartbeat = one keep-alive of the lease, sent on the one keep-alive stream each
 * client holds open, as etcd's own Go client does; status change = put; deregister =
 * delete; discover = a range over the role's prefix; a watcher = a watch on a role's prefix or
 * on one key; a blocking discover = a watch from the range's revision + 1 until its first
 * event, then the range again). One single-member etcd in a temporary directory, driven
 * through the etcd3 client, each thread's agents spread over 16 clients (etcd multiplexes many
 * calls on one gRPC connection; that is how its clients are meant to share). The preload puts
 * 128 keys a transaction, each on a lease of its own granted just before; a preloaded VM's
 * lease has the id its number + 1, so that any thread of the load generator can keep it alive.
 */

export const ETCD_MISSING =
  'etcd is not on PATH: install it (Debian/Ubuntu: apt-get install etcd-server; or a release from https://github.com/etcd-io/etcd/releases) to compare with it';

/** The same TTL as our default REGISTRY_STALE_AFTER: a VM that stops heartbeating vanishes after as long. */
const LEASE_TTL_SECONDS = 300;
const CLIENTS = 16;
const WAIT_MS = 60_000;
/** etcd's default --max-txn-ops. */
const PUTS_PER_TXN = 128;
const TXNS_IN_FLIGHT = 32;

const keyOf = (role: string, id: string) => `/vms/${role}/${id}`;
const idOfKey = (key: Buffer) => key.toString().slice(key.lastIndexOf('/') + 1);
const statusOf = (value: Buffer) => /"status":"(\w+)"/.exec(value.toString())?.[1] ?? 'running';
/** What discover returns: the running VMs of the role (etcd has no filter on values; the client filters). */
const answerOf = (revision: string, kvs: { key: Buffer; value: Buffer }[]): Answer => ({
  index: Number(revision),
  ids: kvs
    .filter((kv) => statusOf(kv.value) === 'running')
    .map((kv) => idOfKey(kv.key))
    .sort()
    .join(','),
});
const failure = (what: string, error: unknown) => {
  const { constructor, message } = error as Error;
  return new SwarmFailure(`${constructor.name}: ${message.slice(0, 80)}`, `${what}: ${message}`);
};

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** Keep-alives of many leases on one stream of a client: each answered, in order, with the lease's TTL. */
class KeepAlives {
  private stream?: Promise<KeepAliveStream>;
  private readonly waiting = new Map<string, { resolve(): void; reject(error: Error): void }[]>();

  constructor(private readonly client: Etcd3) {}

  private open(): Promise<KeepAliveStream> {
    this.stream ??= this.client.leaseClient.leaseKeepAlive().then((stream) => {
      stream.on('data', (answer: ILeaseKeepAliveResponse) => {
        const queue = this.waiting.get(answer.ID);
        const next = queue?.shift();
        if (queue?.length === 0) this.waiting.delete(answer.ID);
        if (Number(answer.TTL) > 0) next?.resolve();
        else next?.reject(new Error(`lease ${answer.ID} has expired`));
      });
      stream.on('error', (error: Error) => {
        this.stream = undefined;
        for (const queue of this.waiting.values()) for (const waiter of queue) waiter.reject(error);
        this.waiting.clear();
      });
      return stream;
    });
    return this.stream;
  }

  async once(leaseId: string): Promise<void> {
    const stream = await this.open();
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(leaseId);
      if (queue) queue.push({ resolve, reject });
      else this.waiting.set(leaseId, [{ resolve, reject }]);
      stream.write({ ID: leaseId });
    });
  }
}

/** etcd's version if it is on PATH, else undefined. */
export function etcdVersion(): string | undefined {
  const answer = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return answer.status === 0 ? /etcd Version: (\S+)/.exec(answer.stdout)?.[1] ?? 'unknown' : undefined;
}

export async function startEtcd(): Promise<SwarmServer> {
  const dir = tempDir('vm-registry-bench-etcd-');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    'etcd',
    [
      '--name', 'swarm',
      '--data-dir', join(dir.path, 'data'),
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `swarm=${peer}`,
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const probe = new Etcd3({ hosts: client });
  const stop = async () => {
    probe.close();
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    child.kill('SIGKILL');
    dir.remove();
  };
  for (let tries = 0; ; tries++) {
    try {
      await probe.get('/ready');
      break;
    } catch (error) {
      if (tries >= 100 || child.exitCode !== null) {
        await stop();
        throw new Error(`etcd did not start: ${(error as Error).message}\n${log}`);
      }
      await sleep(100);
    }
  }

  probe.close();
  return {
    connection: { kind: 'etcd', url: client },
    stop,
    usage: () => usage([child.pid!]),
    died: () => (child.exitCode !== null || child.signalCode !== null ? `etcd exited (${child.exitCode ?? child.signalCode}): ${log.trim().split('\n').slice(-3).join(' ')}` : undefined),
    serverMetrics: async () => undefined,
  };
}

export function etcdClient({ url }: SwarmConnection & { kind: 'etcd' }): SwarmClient {
  const clients = Array.from({ length: CLIENTS }, () => new Etcd3({ hosts: url }));
  const clientOf = (agent: number) => clients[agent % CLIENTS];
  const keepAlives = clients.map((c) => new KeepAlives(c));
  /** The leases of the VMs this thread registered; a preloaded VM's is its number + 1. */
  const leases = new Map<string, string>();
  const leaseOf = (id: string) => leases.get(id) ?? String(Number(id.slice(id.lastIndexOf('-') + 1)) + 1);
  const register = async (id: string, role: string, agent: number) => {
    const { ID: lease } = await clientOf(agent).leaseClient.leaseGrant({ TTL: LEASE_TTL_SECONDS });
    await clientOf(agent).put(keyOf(role, id)).value(registration(id, role)).lease(lease);
    leases.set(id, lease);
  };
  const preloadTxn = async (from: number, count: number) => {
    const client = clientOf(from / PUTS_PER_TXN);
    const indices = Array.from({ length: count }, (_, i) => from + i);
    await Promise.all(indices.map((index) => client.leaseClient.leaseGrant({ TTL: LEASE_TTL_SECONDS, ID: index + 1 })));
    await client.kv.txn({
      success: indices.map((index) => ({
        request_put: { key: Buffer.from(keyOf(roleOf(index), vmId(index))), value: Buffer.from(registration(vmId(index), roleOf(index))), lease: String(index + 1) },
      })),
    });
  };
  const discover = async (role: string, agent: number) => {
    const range = await clientOf(agent).getAll().prefix(`/vms/${role}/`).exec();
    return answerOf(range.header.revision, range.kvs);
  };

  return {
    close: () => clients.forEach((c) => c.close()),
    async preload(n) {
      const result = await preloadWith(Math.ceil(n / PUTS_PER_TXN), TXNS_IN_FLIGHT, (txn) =>
        preloadTxn(txn * PUTS_PER_TXN, Math.min(PUTS_PER_TXN, n - txn * PUTS_PER_TXN)),
      );
      return { n, seconds: result.seconds, perSecond: n / result.seconds };
    },
    register: (id, role, agent) => register(id, role, agent).catch((e) => Promise.reject(failure(`register ${id}`, e))),
    async heartbeat(id, _role, agent) {
      await keepAlives[agent % CLIENTS].once(leaseOf(id)).catch((e) => Promise.reject(failure(`keep-alive ${id}`, e)));
    },
    async setStatus(id, role, status, agent) {
      const body = JSON.stringify({ ...JSON.parse(registration(id, role)), status });
      await clientOf(agent).put(keyOf(role, id)).value(body).lease(leaseOf(id)).catch((e) => Promise.reject(failure(`status of ${id}`, e)));
    },
    async deregister(id, role, agent) {
      await clientOf(agent).delete().key(keyOf(role, id)).exec().catch((e) => Promise.reject(failure(`delete ${id}`, e)));
      leases.delete(id);
    },
    discover: (role, agent) => discover(role, agent).catch((e) => Promise.reject(failure(`range ${role}`, e))),
    async waitForChange(role, after, agent, signal) {
      const watcher = await clientOf(agent).watch().prefix(`/vms/${role}/`).startRevision(String(after.index + 1)).create();
      try {
        const woken = await new Promise<boolean>((resolve, reject) => {
          const timer = setTimeout(() => resolve(false), WAIT_MS);
          const done = (value: boolean) => {
            clearTimeout(timer);
            resolve(value);
          };
          watcher.once('data', () => done(true));
          watcher.once('error', (error) => {
            clearTimeout(timer);
            reject(failure(`watch ${role}`, error));
          });
          signal.addEventListener('abort', () => done(false), { once: true });
        });
        if (signal.aborted) throw signal.reason;
        return woken ? await discover(role, agent) : 'timeout';
      } finally {
        await watcher.cancel().catch(() => undefined);
      }
    },
    async watch(filter, agent, onEvent, onGap) {
      const builder = clientOf(agent).watch();
      const watcher = await (filter.id === undefined ? builder.prefix(`/vms/${filter.role}/`) : builder.key(keyOf(filter.role, filter.id))).create();
      watcher.on('put', (kv) => onEvent(kv.create_revision === kv.mod_revision ? 'registered' : 'updated', idOfKey(kv.key)));
      watcher.on('delete', (kv) => onEvent('deregistered', idOfKey(kv.key)));
      watcher.on('disconnected', () => onGap('disconnected'));
      watcher.on('error', () => onGap('error'));
      return () => void watcher.cancel().catch(() => undefined);
    },
  };
}
