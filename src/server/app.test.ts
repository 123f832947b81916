import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { ManualClock } from '../domain/clock.js';
import { LIMITS } from '../domain/schemas.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { tempDir } from '../../test/support/server-process.js';
import { buildApp } from './app.js';

const STALE_AFTER_MS = 5 * 60_000;
const dir = tempDir();
after(() => dir.remove());
let databases = 0;

const billing = {
  id: 'abc-123-def',
  name: 'billing-lt',
  role: 'lieutenant',
  address: 'abc-123-def.vm.vers.sh',
  registeredBy: 'orchestrator',
  services: [{ name: 'pi-rpc', port: 3001 }],
  metadata: { task: 'process invoices' },
};

interface Harness {
  app: FastifyInstance;
  store: SqliteStore;
  clock: ManualClock;
  request(options: InjectOptions): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  register(overrides?: Record<string, unknown>): Promise<any>;
}

async function harness(options: { authToken?: string } = {}): Promise<Harness> {
  const clock = new ManualClock(Date.parse('2026-11-27T12:00:00.000Z'));
  const store = openSqliteStore({ file: join(dir.path, `app-${databases++}.db`), clock, staleAfterMs: STALE_AFTER_MS });
  const app = await buildApp({ store, clock, authToken: options.authToken });
  const request = async (inject: InjectOptions) => {
    const response = await app.inject(inject);
    const text = response.body;
    return { status: response.statusCode, body: text ? JSON.parse(text) : undefined, headers: response.headers };
  };
  return {
    app,
    store,
    clock,
    request,
    register: async (overrides = {}) => {
      const response = await request({ method: 'POST', url: '/registry/vms', payload: { ...billing, ...overrides } });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      return response.body;
    },
  };
}

describe('the seed API', () => {
  let h: Harness;
  beforeEach(async () => (h = await harness()));

  it('POST /registry/vms answers 201 with the full entry, status defaulting to running', async () => {
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload: billing });
    assert.equal(response.status, 201);
    assert.deepEqual(response.body, {
      ...billing,
      status: 'running',
      registeredAt: '2026-11-27T12:00:00.000Z',
      lastSeen: '2026-11-27T12:00:00.000Z',
      stale: false,
    });
    assert.match(String(response.headers.etag), /^"\d+"$/);
  });

  it('POST of an id already registered answers 409 and keeps the first entry', async () => {
    const first = await h.register();
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload: { ...billing, name: 'impostor' } });
    assert.equal(response.status, 409);
    assert.match(response.body.error, /abc-123-def.*already registered/);
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body, first);
  });

  it('GET /registry/vms lists {vms, count} newest first, with role and status filters alone and combined', async () => {
    await h.register({ id: 'lt-1' });
    h.clock.advance(1);
    await h.register({ id: 'infra-1', role: 'infra' });
    h.clock.advance(1);
    await h.register({ id: 'lt-2', status: 'paused' });
    const ids = async (query: string) => {
      const response = await h.request({ method: 'GET', url: `/registry/vms${query}` });
      assert.equal(response.status, 200);
      assert.equal(response.body.count, response.body.vms.length);
      return response.body.vms.map((vm: { id: string }) => vm.id);
    };
    assert.deepEqual(await ids(''), ['lt-2', 'infra-1', 'lt-1']);
    assert.deepEqual(await ids('?role=lieutenant'), ['lt-2', 'lt-1']);
    assert.deepEqual(await ids('?status=running'), ['infra-1', 'lt-1']);
    assert.deepEqual(await ids('?role=infra&status=running'), ['infra-1']);
    assert.deepEqual(await ids('?role=golden'), []);
  });

  it('list and discover carry the registry revision in X-Registry-Index and the list body', async () => {
    const vm = await h.register();
    const list = await h.request({ method: 'GET', url: '/registry/vms' });
    assert.equal(list.headers['x-registry-index'], String(list.body.revision));
    assert.ok(list.body.revision >= 1);
    const discover = await h.request({ method: 'GET', url: '/registry/discover/lieutenant' });
    assert.equal(discover.headers['x-registry-index'], String(list.body.revision));
    assert.deepEqual(discover.body.vms, [vm]);
  });

  it('GET /registry/vms/:id answers the entry, or 404 naming the id', async () => {
    const vm = await h.register();
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body, vm);
    const missing = await h.request({ method: 'GET', url: '/registry/vms/nobody' });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /"nobody" is not registered/);
  });

  it('PATCH changes the updatable fields given and nothing else', async () => {
    const vm = await h.register();
    h.clock.advance(60_000);
    const response = await h.request({
      method: 'PATCH',
      url: '/registry/vms/abc-123-def',
      payload: { status: 'paused', metadata: { reason: 'saving resources' } },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { ...vm, status: 'paused', metadata: { reason: 'saving resources' } });
    const renamed = await h.request({
      method: 'PATCH',
      url: '/registry/vms/abc-123-def',
      payload: { name: 'b2', address: 'b2.vm.vers.sh', services: [] },
    });
    assert.deepEqual(renamed.body, { ...response.body, name: 'b2', address: 'b2.vm.vers.sh', services: [] });
  });

  it('PATCH to running refreshes lastSeen; other PATCHes leave it', async () => {
    const vm = await h.register({ status: 'paused' });
    h.clock.advance(60_000);
    const paused = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'x' } });
    assert.equal(paused.body.lastSeen, vm.lastSeen);
    const running = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { status: 'running' } });
    assert.equal(running.body.lastSeen, '2026-11-27T12:01:00.000Z');
  });

  it('PATCH and heartbeat of an unknown id answer 404', async () => {
    assert.equal((await h.request({ method: 'PATCH', url: '/registry/vms/nobody', payload: { name: 'x' } })).status, 404);
    assert.equal((await h.request({ method: 'POST', url: '/registry/vms/nobody/heartbeat' })).status, 404);
    assert.equal((await h.request({ method: 'DELETE', url: '/registry/vms/nobody' })).status, 404);
  });

  it('DELETE answers {deleted: true, id} and the VM is gone', async () => {
    await h.register();
    const response = await h.request({ method: 'DELETE', url: '/registry/vms/abc-123-def' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { deleted: true, id: 'abc-123-def' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).status, 404);
  });

  it('heartbeat answers {id, lastSeen} and moves lastSeen', async () => {
    await h.register();
    h.clock.advance(120_000);
    const response = await h.request({ method: 'POST', url: '/registry/vms/abc-123-def/heartbeat' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { id: 'abc-123-def', lastSeen: '2026-11-27T12:02:00.000Z' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body.lastSeen, response.body.lastSeen);
  });

  it('discover answers running, non-stale VMs of the role, newest registration first', async () => {
    await h.register({ id: 'old-infra', role: 'infra' });
    h.clock.advance(1000);
    await h.register({ id: 'new-infra', role: 'infra' });
    await h.register({ id: 'paused-infra', role: 'infra', status: 'paused' });
    await h.register({ id: 'a-worker', role: 'worker' });
    const response = await h.request({ method: 'GET', url: '/registry/discover/infra' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.vms.map((vm: { id: string }) => vm.id), ['new-infra', 'old-infra']);
    assert.equal(response.body.count, 2);
  });
});

describe('staleness', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
    await h.register({ id: 'quiet', role: 'infra' });
    await h.register({ id: 'beating', role: 'infra' });
  });
  const ids = async (url: string) => (await h.request({ method: 'GET', url })).body.vms.map((vm: { id: string }) => vm.id).sort();

  it('a VM with no heartbeat for longer than REGISTRY_STALE_AFTER drops out of discover and ?status=running only', async () => {
    h.clock.advance(STALE_AFTER_MS - 1000);
    await h.request({ method: 'POST', url: '/registry/vms/beating/heartbeat' });
    assert.deepEqual(await ids('/registry/discover/infra'), ['beating', 'quiet']);
    h.clock.advance(1001);
    assert.deepEqual(await ids('/registry/discover/infra'), ['beating']);
    assert.deepEqual(await ids('/registry/vms?status=running'), ['beating']);
    assert.deepEqual(await ids('/registry/vms'), ['beating', 'quiet']);
    assert.deepEqual(await ids('/registry/vms?role=infra'), ['beating', 'quiet']);
  });

  it('every VM answer says whether it is stale, judged when it answers', async () => {
    const staleness = async (url: string) =>
      Object.fromEntries((await h.request({ method: 'GET', url })).body.vms.map((vm: { id: string; stale: boolean }) => [vm.id, vm.stale]));
    await h.register({ id: 'paused', role: 'infra', status: 'paused' });
    assert.deepEqual(await staleness('/registry/vms'), { beating: false, paused: false, quiet: false });
    h.clock.advance(STALE_AFTER_MS - 1000);
    await h.request({ method: 'POST', url: '/registry/vms/beating/heartbeat' });
    assert.deepEqual(await staleness('/registry/vms'), { beating: false, paused: false, quiet: false }, 'the same listing again');
    h.clock.advance(1001);
    assert.deepEqual(await staleness('/registry/vms'), { beating: false, paused: false, quiet: true }, 'time alone turned quiet stale');
    assert.deepEqual(await staleness('/registry/vms?role=infra&stale=true'), { quiet: true });
    assert.deepEqual(await staleness('/registry/discover/infra'), { beating: false });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/quiet' })).body.stale, true);
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/paused' })).body.stale, false, 'only a running VM can be stale');
    const patched = await h.request({ method: 'PATCH', url: '/registry/vms/quiet', payload: { name: 'still quiet' } });
    assert.equal(patched.body.stale, true);
    await h.request({ method: 'POST', url: '/registry/vms/quiet/heartbeat' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/quiet' })).body.stale, false);
  });

  it('its next heartbeat makes it discoverable again', async () => {
    h.clock.advance(STALE_AFTER_MS + 1);
    await h.request({ method: 'POST', url: '/registry/vms/quiet/heartbeat' });
    assert.deepEqual(await ids('/registry/discover/infra'), ['quiet']);
  });
});

describe('GET /health', () => {
  it('answers ok with uptime and the store state, even with auth on', async () => {
    const h = await harness({ authToken: 'secret' });
    h.clock.advance(2500);
    const response = await h.request({ method: 'GET', url: '/health' });
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'ok');
    assert.equal(response.body.uptime, 2.5);
    assert.deepEqual(response.body.store, { kind: 'sqlite', ok: true });
    assert.equal(response.body.staleAfterMs, STALE_AFTER_MS);
  });

  it('says degraded with 503 when the store does not answer', async () => {
    const h = await harness();
    await h.store.close();
    const response = await h.request({ method: 'GET', url: '/health' });
    assert.equal(response.status, 503);
    assert.equal(response.body.status, 'degraded');
    assert.equal(response.body.store.ok, false);
  });
});

describe('authentication with VERS_AUTH_TOKEN', () => {
  let h: Harness;
  before(async () => (h = await harness({ authToken: 's3cret-token' })));
  const routes: InjectOptions[] = [
    { method: 'POST', url: '/registry/vms', payload: billing },
    { method: 'GET', url: '/registry/vms' },
    { method: 'GET', url: '/registry/vms/abc-123-def' },
    { method: 'PUT', url: '/registry/vms/abc-123-def', payload: billing },
    { method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'x' } },
    { method: 'POST', url: '/registry/vms/abc-123-def/heartbeat' },
    { method: 'DELETE', url: '/registry/vms/abc-123-def' },
    { method: 'GET', url: '/registry/discover/infra' },
  ];

  for (const route of routes) {
    it(`${route.method} ${route.url} without a token or with a wrong one answers 401 and changes nothing`, async () => {
      const missing = await h.request(route);
      assert.equal(missing.status, 401);
      assert.match(missing.body.error, /Authorization: Bearer/);
      assert.equal(missing.headers['www-authenticate'], 'Bearer realm="vm-registry"');
      const wrong = await h.request({ ...route, headers: { authorization: 'Bearer s3cret-tokeN' } });
      assert.equal(wrong.status, 401);
      assert.match(wrong.body.error, /not valid/);
      assert.equal(await h.store.count(), 0);
    });
  }

  it('admits the token whatever the case of the scheme', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const response = await h.request({ method: 'GET', url: '/registry/vms', headers: { authorization: `${scheme} s3cret-token` } });
      assert.equal(response.status, 200);
    }
  });

  it('refuses other schemes and a bare token', async () => {
    for (const authorization of ['Basic czNjcmV0LXRva2Vu', 's3cret-token', 'Bearer', 'Bearer s3cret-token extra']) {
      assert.equal((await h.request({ method: 'GET', url: '/registry/vms', headers: { authorization } })).status, 401);
    }
  });
});

describe('PUT /registry/vms/:id', () => {
  let h: Harness;
  beforeEach(async () => (h = await harness()));
  const { id: _id, ...body } = billing;

  it('answers 201 when it creates and 200 when it replaces, keeping registeredAt', async () => {
    const created = await h.request({ method: 'PUT', url: '/registry/vms/abc-123-def', payload: body });
    assert.equal(created.status, 201);
    h.clock.advance(5000);
    const replaced = await h.request({ method: 'PUT', url: '/registry/vms/abc-123-def', payload: { ...body, name: 'again' } });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.name, 'again');
    assert.equal(replaced.body.registeredAt, created.body.registeredAt);
    assert.equal(replaced.body.lastSeen, '2026-11-27T12:00:05.000Z');
  });

  it('refuses a body id that disagrees with the path', async () => {
    const response = await h.request({ method: 'PUT', url: '/registry/vms/abc-123-def', payload: { ...billing, id: 'other' } });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /does not match/);
  });
});

describe('If-Match', () => {
  let h: Harness;
  beforeEach(async () => (h = await harness()));

  it('PATCH with the current ETag succeeds; with a stale one answers 412 and changes nothing', async () => {
    await h.register();
    const current = await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' });
    const etag = String(current.headers.etag);
    const ok = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'n1' }, headers: { 'if-match': etag } });
    assert.equal(ok.status, 200);
    assert.notEqual(ok.headers.etag, etag);
    const late = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'n2' }, headers: { 'if-match': etag } });
    assert.equal(late.status, 412);
    const del = await h.request({ method: 'DELETE', url: '/registry/vms/abc-123-def', headers: { 'if-match': etag } });
    assert.equal(del.status, 412);
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body.name, 'n1');
  });

  it('a malformed If-Match is a 400 that says what it expects', async () => {
    await h.register();
    const response = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { name: 'x' }, headers: { 'if-match': 'abc' } });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /If-Match/);
  });
});

describe('what real clients send', () => {
  let h: Harness;
  beforeEach(async () => (h = await harness()));

  it('reads a JSON body sent as form encoding (curl -d without -H)', async () => {
    const response = await h.request({
      method: 'POST',
      url: '/registry/vms',
      payload: JSON.stringify(billing),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(response.status, 201);
  });

  it('reads a JSON body with text/plain or no Content-Type at all', async () => {
    for (const [i, headers] of [{ 'content-type': 'text/plain' }, {}].entries()) {
      const response = await h.request({ method: 'POST', url: '/registry/vms', payload: JSON.stringify({ ...billing, id: `vm-${i}` }), headers });
      assert.equal(response.status, 201, JSON.stringify(response.body));
    }
  });

  it('accepts bodiless POST heartbeat and DELETE that carry Content-Type: application/json', async () => {
    await h.register();
    const headers = { 'content-type': 'application/json' };
    assert.equal((await h.request({ method: 'POST', url: '/registry/vms/abc-123-def/heartbeat', headers })).status, 200);
    assert.equal((await h.request({ method: 'DELETE', url: '/registry/vms/abc-123-def', headers })).status, 200);
  });

  it('trims every string of a body before checking it, the id and role included; metadata is stored as sent', async () => {
    const vm = await h.register({
      id: '  t1  ',
      name: `  ${'n'.repeat(LIMITS.nameLength)}  `,
      role: ' lieutenant ',
      address: ' a.vm.vers.sh\n',
      services: [{ name: ' rpc ', port: 1, healthPath: ' /health ' }],
      metadata: { note: '  as sent  ' },
    });
    assert.equal(vm.id, 't1');
    assert.equal(vm.name, 'n'.repeat(LIMITS.nameLength), 'the limit applies to the trimmed name');
    assert.equal(vm.role, 'lieutenant');
    assert.equal(vm.address, 'a.vm.vers.sh');
    assert.deepEqual(vm.services, [{ name: 'rpc', port: 1, healthPath: '/health' }]);
    assert.deepEqual(vm.metadata, { note: '  as sent  ' });
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/t1' })).status, 200);

    const put = await h.request({ method: 'PUT', url: '/registry/vms/t2', payload: { ...billing, id: ' t2 ' } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const patched = await h.request({ method: 'PATCH', url: '/registry/vms/t2', payload: { status: ' paused ', name: ' renamed ' } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.status, 'paused');
    assert.equal(patched.body.name, 'renamed');
    const imported = await h.request({
      method: 'POST',
      url: '/registry/import',
      payload: { vms: [{ ...billing, id: ' t3 ', registeredAt: ' 2026-11-27T11:00:00.000Z ', lastSeen: '2026-11-27T11:30:00.000Z' }] },
    });
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    assert.equal((await h.request({ method: 'GET', url: '/registry/vms/t3' })).body.registeredAt, '2026-11-27T11:00:00.000Z');
  });

  it("accepts services[].protocol as agent-services' pi extension sends it, stored trimmed and in lower case", async () => {
    const services = [{ name: 'api', port: 443, protocol: ' HTTPS ' }, { name: 'rpc', port: 9000, protocol: 'grpc', healthPath: '/health' }];
    const vm = await h.register({ services });
    const stored = [{ name: 'api', port: 443, protocol: 'https' }, { name: 'rpc', port: 9000, protocol: 'grpc', healthPath: '/health' }];
    assert.deepEqual(vm.services, stored);
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body.services, stored);
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/discover/lieutenant' })).body.vms[0].services, stored);
    const patched = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload: { services: [{ name: 'raw', port: 7, protocol: 'tcp' }] } });
    assert.deepEqual(patched.body.services, [{ name: 'raw', port: 7, protocol: 'tcp' }]);
  });

  it('echoes the caller x-request-id', async () => {
    const response = await h.request({ method: 'GET', url: '/registry/vms', headers: { 'x-request-id': 'trace-42' } });
    assert.equal(response.headers['x-request-id'], 'trace-42');
  });
});

describe('bad input: a 400 naming the problem, and nothing stored', () => {
  let h: Harness;
  before(async () => (h = await harness()));

  const cases: Array<[string, unknown, RegExp]> = [
    ['no body', undefined, /request body is required|must be a JSON object/],
    ['a JSON array', [billing], /must be a JSON object/],
    ['a missing id', { ...billing, id: undefined }, /^id is required/],
    ['a missing name', { ...billing, name: undefined }, /^name is required/],
    ['a missing role', { ...billing, role: undefined }, /^role is required/],
    ['a missing address', { ...billing, address: undefined }, /^address is required/],
    ['a missing registeredBy', { ...billing, registeredBy: undefined }, /^registeredBy is required/],
    ['an unknown role', { ...billing, role: 'boss' }, /^role must be one of infra, lieutenant, worker, golden, custom/],
    ['an unknown status', { ...billing, status: 'zombie' }, /^status must be one of running, paused, stopped/],
    ['an id with a slash', { ...billing, id: 'a/b' }, /^id may only contain/],
    ['an id with spaces', { ...billing, id: 'a b' }, /^id may only contain/],
    ['an id too long', { ...billing, id: 'x'.repeat(LIMITS.idLength + 1) }, /^id must be at most 128 characters/],
    ['an empty name', { ...billing, name: '' }, /^name must not be empty/],
    ['a blank name', { ...billing, name: '   ' }, /^name must not be empty or blank/],
    ['a blank id', { ...billing, id: ' \t ' }, /^id must not be empty or blank/],
    ['a name too long', { ...billing, name: 'n'.repeat(LIMITS.nameLength + 1) }, /^name must be at most/],
    ['a numeric name', { ...billing, name: 42 }, /^name must be a string/],
    ['services not an array', { ...billing, services: { name: 'x', port: 1 } }, /^services must be an array/],
    ['a port above 65535', { ...billing, services: [{ name: 'x', port: 70000 }] }, /^services\[0\]\.port must be at most 65535/],
    ['a port of 0', { ...billing, services: [{ name: 'x', port: 0 }] }, /^services\[0\]\.port must be at least 1/],
    ['a fractional port', { ...billing, services: [{ name: 'x', port: 80.5 }] }, /^services\[0\]\.port must be an integer/],
    ['a port as a string', { ...billing, services: [{ name: 'x', port: '80' }] }, /^services\[0\]\.port must be an integer/],
    ['a service without a name', { ...billing, services: [{ port: 80 }] }, /^services\[0\]\.name is required/],
    ['a healthPath without a slash', { ...billing, services: [{ name: 'x', port: 1, healthPath: 'health' }] }, /healthPath must start with "\/"/],
    ['an empty protocol', { ...billing, services: [{ name: 'x', port: 1, protocol: '' }] }, /^services\[0\]\.protocol must not be empty/],
    ['a protocol with a space inside', { ...billing, services: [{ name: 'x', port: 1, protocol: 'http 2' }] }, /^services\[0\]\.protocol must be a protocol name such as http/],
    ['a protocol with a slash', { ...billing, services: [{ name: 'x', port: 1, protocol: 'HTTP/1.1' }] }, /^services\[0\]\.protocol must be a protocol name/],
    ['a protocol too long', { ...billing, services: [{ name: 'x', port: 1, protocol: 'p'.repeat(LIMITS.protocolLength + 1) }] }, /^services\[0\]\.protocol must be at most 16 characters/],
    ['a protocol that is not a string', { ...billing, services: [{ name: 'x', port: 1, protocol: 443 }] }, /^services\[0\]\.protocol must be a string/],
    ['an unknown field in a service', { ...billing, services: [{ name: 'x', port: 1, transport: 'tcp' }] }, /^unknown field "transport" in services\[0\]; allowed fields: name, port, protocol, healthPath/],
    ['stale, which the server judges', { ...billing, stale: false }, /^unknown field "stale"/],
    ['too many services', { ...billing, services: Array.from({ length: LIMITS.services + 1 }, () => ({ name: 'x', port: 1 })) }, /^services may hold at most 32 items/],
    ['metadata as an array', { ...billing, metadata: [1] }, /^metadata must be a JSON object/],
    ['metadata as a string', { ...billing, metadata: 'x' }, /^metadata must be a JSON object/],
    ['metadata too large', { ...billing, metadata: { blob: 'x'.repeat(LIMITS.metadataBytes) } }, /^metadata is \d+ bytes encoded; the limit is 16384/],
    ['metadata nested too deep', { ...billing, metadata: JSON.parse('{"a":'.repeat(20) + '1' + '}'.repeat(20)) }, /^metadata is nested deeper than 16/],
    ['an unknown field', { ...billing, color: 'blue' }, /^unknown field "color"; allowed fields: id, name/],
    ['registeredAt, which the server sets', { ...billing, registeredAt: '2020-01-01T00:00:00Z' }, /^unknown field "registeredAt"/],
  ];

  for (const [what, payload, error] of cases) {
    it(`POST with ${what}`, async () => {
      const response = await h.request({
        method: 'POST',
        url: '/registry/vms',
        ...(payload !== undefined && { payload: JSON.stringify(payload) }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(response.status, 400, JSON.stringify(response.body));
      assert.match(response.body.error, error);
      assert.equal(await h.store.count(), 0);
    });
  }

  it('a field nested thousands of levels deep (trimmed before it is checked) is a 400, not a crash', async () => {
    const deep = '['.repeat(30_000) + '" x "' + ']'.repeat(30_000);
    const payload = JSON.stringify(billing).replace('"billing-lt"', deep);
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload, headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.match(response.body.error, /^name must be a string/);
    assert.equal(await h.store.count(), 0);
  });

  it('malformed JSON', async () => {
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload: '{"id": "a",', headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /not valid JSON/);
  });

  it('a body over the limit answers 413', async () => {
    const payload = JSON.stringify({ ...billing, metadata: { blob: 'x'.repeat(LIMITS.bodyBytes) } });
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload, headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 413);
    assert.match(response.body.error, /larger than the limit of 65536 bytes/);
    assert.equal(await h.store.count(), 0);
  });

  it('an unknown role or status in a filter, or in discover', async () => {
    for (const [url, error] of [
      ['/registry/vms?role=boss', /^query parameter role must be one of/],
      ['/registry/vms?status=zombie', /^query parameter status must be one of/],
      ['/registry/discover/boss', /^path parameter role must be one of/],
    ] as const) {
      const response = await h.request({ method: 'GET', url });
      assert.equal(response.status, 400, url);
      assert.match(response.body.error, error);
    }
  });

  it('PATCH of a field that cannot change, an empty PATCH, and a wrong type change nothing', async () => {
    const vm = await h.register();
    for (const [payload, error] of [
      [{ role: 'infra' }, /^unknown field "role"; allowed fields: name, status, address, services, metadata/],
      [{ id: 'new-id' }, /^unknown field "id"/],
      [{}, /^request body must set at least one of: name, status, address, services, metadata/],
      [{ status: 'gone' }, /^status must be one of/],
      [{ name: 'ok', services: [{ name: 'x', port: -1 }] }, /^services\[0\]\.port must be at least 1/],
    ] as const) {
      const response = await h.request({ method: 'PATCH', url: '/registry/vms/abc-123-def', payload });
      assert.equal(response.status, 400, JSON.stringify(payload));
      assert.match(response.body.error, error);
    }
    assert.deepEqual((await h.request({ method: 'GET', url: '/registry/vms/abc-123-def' })).body, vm);
    await h.request({ method: 'DELETE', url: '/registry/vms/abc-123-def' });
  });

  it('__proto__ in metadata is stored as data and pollutes nothing', async () => {
    const payload = '{"id":"proto","name":"p","role":"worker","address":"a","registeredBy":"o","metadata":{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}}';
    const response = await h.request({ method: 'POST', url: '/registry/vms', payload, headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 201, JSON.stringify(response.body));
    const read = await h.app.inject({ method: 'GET', url: '/registry/vms/proto' });
    assert.match(read.body, /"__proto__":\{"isAdmin":true\}/);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
    assert.equal((Object.prototype as Record<string, unknown>).x, undefined);
    await h.request({ method: 'DELETE', url: '/registry/vms/proto' });
  });

  it('an unknown route answers a JSON 404', async () => {
    const response = await h.request({ method: 'GET', url: '/registry/nothing-here' });
    assert.equal(response.status, 404);
    assert.match(response.body.error, /no route for GET \/registry\/nothing-here/);
  });
});

describe('?stale on list', () => {
  it('true: only stale VMs; false: none; anything else is a 400', async () => {
    const h = await harness();
    await h.register({ id: 'quiet' });
    h.clock.advance(STALE_AFTER_MS + 1);
    await h.register({ id: 'fresh' });
    await h.register({ id: 'paused', status: 'paused' });
    const ids = async (query: string) =>
      (await h.request({ method: 'GET', url: `/registry/vms${query}` })).body.vms.map((vm: { id: string }) => vm.id).sort();
    assert.deepEqual(await ids('?stale=true'), ['quiet']);
    assert.deepEqual(await ids('?stale=false'), ['fresh', 'paused']);
    assert.deepEqual(await ids('?status=running&stale=true'), ['quiet'], 'an explicit stale overrides the running rule');
    const bad = await h.request({ method: 'GET', url: '/registry/vms?stale=maybe' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^query parameter stale must be one of true, false/);
  });
});

describe('event stream keep-alive', () => {
  it('sends a comment line on an idle stream at the keep-alive interval', async () => {
    const clock = new ManualClock();
    const store = openSqliteStore({ file: join(dir.path, `keepalive.db`), clock, staleAfterMs: STALE_AFTER_MS });
    const app = await buildApp({ store, clock, keepAliveMs: 50 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as { port: number };
      const controller = new AbortController();
      const response = await fetch(`http://127.0.0.1:${port}/registry/events`, { signal: controller.signal });
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk);
        if ((text.match(/: keep-alive\n\n/g) ?? []).length >= 2) break;
      }
      controller.abort();
      assert.match(text, /^retry: 2000\n: watching from revision 0\n\n/);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

describe('slow clients', () => {
  it('a client that never finishes its headers is disconnected', async () => {
    const clock = new ManualClock();
    const store = openSqliteStore({ file: join(dir.path, 'slow.db'), clock, staleAfterMs: STALE_AFTER_MS });
    const app = await buildApp({ store, clock, timeouts: { headersMs: 300, requestMs: 600 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as { port: number };
      const socket = connect(port, '127.0.0.1');
      socket.write('GET /registry/vms HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      const started = Date.now();
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk));
      await new Promise((resolve) => socket.on('close', resolve));
      assert.ok(Date.now() - started < 5000, 'the server closed the connection');
      assert.match(answer, /^HTTP\/1\.1 408/);
      assert.match(answer, /\{"error":"the request was not received in time: headers within 0\.3 s, the whole request within 0\.6 s"\}$/);
    } finally {
      await app.close();
      await store.close();
    }
  });
});
