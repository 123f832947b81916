import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FAST_CHECKS, TLS_CERT, Target } from './support/health-target.js';
import { runCli, startServer, tempDir, type ServerProcess } from './support/server-process.js';
import { Watcher } from './support/watch.js';

const dir = tempDir();
after(() => dir.remove());
let databases = 0;
const freshDb = () => join(dir.path, `registry-${databases++}.db`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const checked = (id: string, address: string, port: number) => ({
  id,
  name: id,
  role: 'lieutenant',
  address,
  registeredBy: 'health-test',
  services: [{ name: 'pi-rpc', port, healthPath: '/health' }],
});
const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

type Health = { status: string; checkedAt?: string; output?: string };
type Answer = { vms: Array<{ id: string; services?: Array<{ health?: Health }> }> };

const auth = { authorization: 'Bearer secret-token' };
const authed = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...(init.headers as object), ...auth } });

describe('active health checks on a real server', () => {
  let target: Target;
  let server: ServerProcess;
  const api = async (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
  const healthOf = async (id: string): Promise<Health | undefined> =>
    ((await (await api(`/registry/vms/${id}`, authed())).json()) as Answer['vms'][number]).services?.[0].health;
  const until = async (id: string, status: string) => {
    for (let i = 0; i < 100; i++) {
      if ((await healthOf(id))?.status === status) return;
      await sleep(50);
    }
    assert.fail(`${id} never became ${status}; it is ${JSON.stringify(await healthOf(id))}`);
  };

  before(async () => {
    target = await Target.start();
    server = await startServer({ env: { REGISTRY_DB: freshDb(), ...FAST_CHECKS, REGISTRY_HEALTH_HOSTS: '127.0.0.1', VERS_AUTH_TOKEN: 'secret-token' } });
  });
  after(async () => {
    await server.stop();
    await target.close();
  });

  it('passing, then critical after 2 failures, still critical while it hangs, passing again; one event per change, discover follows', async () => {
    const watcher = await Watcher.open(`${server.url}/registry/events?id=hc-1`, auth);
    const created = await api('/registry/vms', authed(post(checked('hc-1', '127.0.0.1', target.port))));
    assert.equal(created.status, 201);
    assert.deepEqual(((await created.json()) as Answer['vms'][number]).services?.[0].health, { status: 'unknown' });
    const get = (path: string) => api(path, authed()).then(async (r) => ((await r.json()) as Answer).vms.map((vm) => vm.id));

    await until('hc-1', 'passing');
    await sleep(1000); // three more passing rounds: none of them may write
    target.mode = 'fail';
    await until('hc-1', 'critical');
    assert.equal((await healthOf('hc-1'))?.output, 'HTTP 500');
    assert.deepEqual(await get('/registry/discover/lieutenant'), []);
    assert.deepEqual(await get('/registry/discover/lieutenant?health=any'), ['hc-1']);
    assert.deepEqual(await get('/registry/vms?health=critical'), ['hc-1']);
    assert.deepEqual(await get('/registry/vms?health=passing'), []);
    target.mode = 'hang';
    await sleep(1000);
    assert.equal((await healthOf('hc-1'))?.status, 'critical');
    target.mode = 'ok';
    await until('hc-1', 'passing');
    assert.deepEqual(await get('/registry/discover/lieutenant'), ['hc-1']);
    assert.deepEqual(await get('/registry/discover/lieutenant?service=pi-rpc'), ['hc-1']);
    assert.deepEqual(await get('/registry/discover/lieutenant?service=board'), []);

    const events = await watcher.until((e) => e.length >= 4);
    await sleep(700);
    await watcher.close();
    const services = (e: (typeof events)[number]) => e.data.vm.services as Array<{ health: Health }>;
    assert.deepEqual(
      events.map((e) => `${e.event}:${services(e)[0].health.status}`),
      ['registered:unknown', 'updated:passing', 'updated:critical', 'updated:passing'],
    );
    for (const event of events.slice(1)) assert.ok(!Number.isNaN(Date.parse(services(event)[0].health.checkedAt!)));
  });

  it('sends no registry credentials and follows no redirect (a 3xx is a failure)', async () => {
    const other = await Target.start();
    try {
      other.mode = 'redirect';
      await api('/registry/vms', authed(post(checked('hc-redirect', '127.0.0.1', other.port))));
      await until('hc-redirect', 'critical');
      assert.equal((await healthOf('hc-redirect'))?.output, 'HTTP 302');
      assert.ok(other.requests.length >= 2);
      for (const headers of other.requests) {
        assert.equal(headers.authorization, undefined);
        assert.equal(headers.cookie, undefined);
      }
      assert.ok(other.requests.every((h) => h['user-agent'] === 'vm-registry-health-check'));
    } finally {
      await other.close();
    }
  });

  it('a target that hangs or drips bytes costs one timeout each, and the others are still checked', async () => {
    const hanging = await Target.start();
    const dripping = await Target.start();
    try {
      hanging.mode = 'hang';
      dripping.mode = 'drip';
      await api('/registry/vms', authed(post(checked('hc-hang', '127.0.0.1', hanging.port))));
      await api('/registry/vms', authed(post(checked('hc-drip', '127.0.0.1', dripping.port))));
      await api('/registry/vms', authed(post(checked('hc-fine', '127.0.0.1', target.port))));
      await until('hc-hang', 'critical');
      await until('hc-drip', 'critical');
      await until('hc-fine', 'passing');
      assert.match((await healthOf('hc-hang'))!.output!, /timeout after 200 ms/);
      assert.match((await healthOf('hc-drip'))!.output!, /^HTTP 200$|timeout/);
    } finally {
      await hanging.close();
      await dripping.close();
    }
  });

  it('checks follow registrations and deregistrations as they happen, without listing the registry again each round', async () => {
    const lists = async () =>
      Number(/vm_registry_store_operation_duration_seconds_count\{operation="list"\} (\d+)/.exec(await (await api('/metrics', authed())).text())?.[1] ?? 0);
    const own = await Target.start();
    try {
      const listedBefore = await lists();
      await api('/registry/vms', authed(post(checked('hc-follow-a', '127.0.0.1', own.port))));
      await until('hc-follow-a', 'passing');
      await api('/registry/vms', authed(post(checked('hc-follow-b', '127.0.0.1', own.port))));
      await until('hc-follow-b', 'passing');
      assert.equal((await api('/registry/vms/hc-follow-a', authed({ method: 'DELETE' }))).status, 200);
      await api('/registry/vms/hc-follow-b', authed({ method: 'PATCH', body: JSON.stringify({ status: 'stopped' }), headers: { 'content-type': 'application/json' } }));
      await sleep(400); // a check begun before the changes may still land
      const sent = own.requests.length;
      await sleep(1000); // three more rounds
      assert.equal(own.requests.length, sent, 'a deregistered or stopped VM is checked no more');
      assert.equal(await lists(), listedBefore, 'seven rounds went by without a listing');
    } finally {
      await own.close();
    }
  });

  it('refuses unknown health values and empty service names with a 400 naming the parameter', async () => {
    for (const path of ['/registry/vms?health=bad', '/registry/discover/lieutenant?health=bad', '/registry/vms?health=any']) {
      const response = await api(path, authed());
      assert.equal(response.status, 400, path);
      assert.match(((await response.json()) as { error: string }).error, /health/);
    }
    const response = await api('/registry/vms?service=', authed());
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: string }).error, /service/);
  });

  it('/metrics counts checks, failures by reason, latency, overdue checks and services by status', async () => {
    const text = await (await api('/metrics', authed())).text();
    assert.match(text, /vm_registry_health_checks_total\{result="pass"\} [1-9]/);
    assert.match(text, /vm_registry_health_check_failures_total\{reason="status"\} [1-9]/);
    assert.match(text, /vm_registry_health_check_failures_total\{reason="timeout"\} [1-9]/);
    assert.match(text, /vm_registry_health_check_duration_seconds_count [1-9]/);
    assert.match(text, /vm_registry_health_checks_overdue_total \d/);
    assert.match(text, /vm_registry_health_services\{status="passing"\} [1-9]/);
  });
});

describe('health checks never reach a host the rule refuses', () => {
  it('loopback by address or by a name resolving to it is refused unless REGISTRY_HEALTH_HOSTS names it, and counted', async () => {
    const target = await Target.start();
    const server = await startServer({ env: { REGISTRY_DB: freshDb(), ...FAST_CHECKS } });
    try {
      for (const [id, address] of [['by-ip', '127.0.0.1'], ['by-name', 'localhost']]) {
        const response = await fetch(`${server.url}/registry/vms`, post(checked(id, address, target.port)));
        assert.equal(response.status, 201);
      }
      const health = async (id: string) =>
        ((await (await fetch(`${server.url}/registry/vms/${id}`)).json()) as Answer['vms'][number]).services?.[0].health;
      for (let i = 0; i < 100 && ((await health('by-ip'))?.status !== 'critical' || (await health('by-name'))?.status !== 'critical'); i++) {
        await sleep(50);
      }
      for (const id of ['by-ip', 'by-name']) {
        const seen = await health(id);
        assert.equal(seen?.status, 'critical', id);
        assert.match(seen!.output!, /^refused: .*(127\.0\.0\.1|::1) is loopback/, id);
      }
      assert.equal(target.connections, 0);
      assert.match(await (await fetch(`${server.url}/metrics`)).text(), /vm_registry_health_check_failures_total\{reason="refused"\} [1-9]/);
    } finally {
      await server.stop();
      await target.close();
    }
  });

  it('with checks off (the default), services carry no health and discover is as before', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb() } });
    try {
      const created = await (await fetch(`${server.url}/registry/vms`, post(checked('plain', '127.0.0.1', 9)))).json();
      assert.deepEqual(created.services, [{ name: 'pi-rpc', port: 9, healthPath: '/health' }]);
    } finally {
      await server.stop();
    }
  });
});

describe('health check settings', () => {
  for (const [name, value] of [
    ['REGISTRY_HEALTH_CHECKS', 'maybe'],
    ['REGISTRY_HEALTH_SCHEME', 'gopher'],
    ['REGISTRY_HEALTH_INTERVAL', 'soon'],
    ['REGISTRY_HEALTH_TIMEOUT', '0'],
    ['REGISTRY_HEALTH_FAILURES', '0'],
    ['REGISTRY_HEALTH_CONCURRENCY', 'lots'],
    ['REGISTRY_HEALTH_HOSTS', 'bad host!'],
    ['REGISTRY_HEALTH_HOSTS', '10.0.0.0/99'],
  ]) {
    it(`an invalid ${name} (${value}) stops the server at start, naming it`, async () => {
      const { code, stderr } = await runCli(['serve'], { env: { REGISTRY_DB: freshDb(), PORT: '0', [name]: value } });
      assert.equal(code, 2);
      assert.match(stderr, new RegExp(name));
    });
  }

  it('a timeout longer than the interval stops the server at start', async () => {
    const { code, stderr } = await runCli(['serve'], {
      env: { REGISTRY_DB: freshDb(), PORT: '0', REGISTRY_HEALTH_INTERVAL: '1s', REGISTRY_HEALTH_TIMEOUT: '2s' },
    });
    assert.equal(code, 2);
    assert.match(stderr, /REGISTRY_HEALTH_TIMEOUT .* REGISTRY_HEALTH_INTERVAL/);
  });
});

describe('checks over https (REGISTRY_HEALTH_SCHEME=https)', () => {
  const overHttps = { REGISTRY_HEALTH_SCHEME: 'https', ...FAST_CHECKS, REGISTRY_HEALTH_HOSTS: '127.0.0.1' };
  const statusOf = async (server: ServerProcess, id: string, status: string): Promise<Health | undefined> => {
    let health: Health | undefined;
    for (let i = 0; i < 100; i++) {
      health = ((await (await fetch(`${server.url}/registry/vms/${id}`)).json()) as Answer['vms'][number]).services?.[0].health;
      if (health?.status === status) break;
      await sleep(50);
    }
    return health;
  };

  it('a target whose certificate the server trusts passes; the same target untrusted is critical, naming the certificate', async () => {
    const target = await Target.start({ tls: true });
    const trusting = await startServer({ env: { REGISTRY_DB: freshDb(), ...overHttps, NODE_EXTRA_CA_CERTS: fileURLToPath(TLS_CERT) } });
    const distrusting = await startServer({ env: { REGISTRY_DB: freshDb(), ...overHttps } });
    try {
      for (const server of [trusting, distrusting]) {
        assert.equal((await fetch(`${server.url}/registry/vms`, post(checked('tls-1', '127.0.0.1', target.port)))).status, 201);
      }
      const trusted = await statusOf(trusting, 'tls-1', 'passing');
      assert.equal(trusted?.status, 'passing');
      assert.equal(trusted?.output, 'HTTP 200');
      const untrusted = await statusOf(distrusting, 'tls-1', 'critical');
      assert.equal(untrusted?.status, 'critical');
      assert.match(untrusted?.output ?? '', /^DEPTH_ZERO_SELF_SIGNED_CERT: self[- ]signed certificate/);
    } finally {
      await trusting.stop();
      await distrusting.stop();
      await target.close();
    }
  });
});

describe('shutting down with checks in flight', () => {
  it('SIGTERM while every check hangs on its target exits cleanly at once, without waiting out the checks', async () => {
    const target = await Target.start();
    target.mode = 'hang';
    const db = freshDb();
    const checking = { REGISTRY_DB: db, REGISTRY_HEALTH_CHECKS: 'on', REGISTRY_HEALTH_INTERVAL: '30s', REGISTRY_HEALTH_TIMEOUT: '30s', REGISTRY_HEALTH_HOSTS: '127.0.0.1' };
    // Registered before the server that checks them starts, so that its first round holds them
    // all: 200 offsets spread over 30 s put a check in flight every 150 ms.
    const registering = await startServer({ env: { REGISTRY_DB: db } });
    for (let i = 0; i < 200; i++) await fetch(`${registering.url}/registry/vms`, post(checked(`hang-${i}`, '127.0.0.1', target.port)));
    await registering.stop();
    const server = await startServer({ env: checking });
    try {
      for (let i = 0; i < 200 && target.requests.length < 3; i++) await sleep(50);
      assert.ok(target.requests.length >= 3, `checks in flight: ${target.requests.length}`);
      const stopped = await Promise.race([server.stop(), sleep(15_000).then(() => 'still running' as const)]);
      assert.equal(stopped, 0, 'exited with 0 well before the checks’ 30 s timeout');
      assert.match(server.output(), /"closed cleanly"/);
    } finally {
      await server.kill();
      await target.close();
    }
  });
});
