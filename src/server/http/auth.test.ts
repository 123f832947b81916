import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { testApp, type TestApp } from '../../testing/app.js';
import { aRegistration } from '../../testing/fixtures.js';
import { sha256Hex, TokenRegistry, type Scope } from './tokens.js';

const SECRETS: Record<string, string> = {
  reader: 'secret-reader',
  writerA: 'secret-writer-a',
  writerB: 'secret-writer-b',
  readWrite: 'secret-read-write',
  admin: 'secret-admin',
};
const SCOPES_OF: Record<string, Scope[]> = {
  reader: ['read'],
  writerA: ['write'],
  writerB: ['write'],
  readWrite: ['read', 'write'],
  admin: ['admin'],
};

const vm = (id: string) => aRegistration({ id, role: 'worker' });

/** A fresh registry where writerA registered vm-a, writerB vm-b, and VERS_AUTH_TOKEN vm-root. */
async function registry() {
  const tokens = new TokenRegistry(
    'the-full-token',
    Object.entries(SECRETS).map(([name, secret]) => ({ name, sha256: sha256Hex(secret), scopes: SCOPES_OF[name] })),
  );
  const { app, store, close } = await testApp({ tokens });
  const as = (who: string | undefined, options: InjectOptions) =>
    app.inject({
      ...options,
      headers: { ...options.headers, ...(who && { authorization: `Bearer ${SECRETS[who] ?? who}` }) },
    });
  for (const [who, id] of [['writerA', 'vm-a'], ['writerB', 'vm-b'], ['the-full-token', 'vm-root']]) {
    const response = await as(who, { method: 'POST', url: '/registry/vms', payload: vm(id) });
    assert.equal(response.statusCode, 201);
  }
  return { store, as, close };
}

type Case = [route: string, request: InjectOptions];
const ROUTES = (id: string): Case[] => [
  ['list', { method: 'GET', url: '/registry/vms' }],
  ['get', { method: 'GET', url: `/registry/vms/${id}` }],
  ['discover', { method: 'GET', url: '/registry/discover/worker' }],
  ['events (bad since, answered before streaming)', { method: 'GET', url: '/registry/events?since=999999' }],
  ['register', { method: 'POST', url: '/registry/vms', payload: vm('brand-new') }],
  ['put', { method: 'PUT', url: `/registry/vms/${id}`, payload: { ...vm(id), id: undefined } }],
  ['patch', { method: 'PATCH', url: `/registry/vms/${id}`, payload: { status: 'paused' } }],
  ['heartbeat', { method: 'POST', url: `/registry/vms/${id}/heartbeat` }],
  ['delete', { method: 'DELETE', url: `/registry/vms/${id}` }],
  ['import', { method: 'POST', url: '/registry/import', payload: { vms: [] } }],
  ['whoami', { method: 'GET', url: '/registry/whoami' }],
];
const READS = new Set(['list', 'get', 'discover', 'events (bad since, answered before streaming)']);
const OWN_WRITES = new Set(['put', 'patch', 'heartbeat', 'delete']);

/** What each caller should get on each route, for a VM it registered (own) or not. */
function expected(who: string | undefined, route: string, own: boolean): number[] {
  if (who === undefined || who === 'unknown-token') return [401];
  const scopes = who === 'the-full-token' ? ['admin'] : SCOPES_OF[who];
  const ok = route === 'events (bad since, answered before streaming)' ? [410] : route === 'register' ? [201] : [200];
  if (route === 'whoami' || scopes.includes('admin')) return ok;
  if (route === 'import') return [403];
  if (READS.has(route)) return scopes.includes('read') ? ok : [403];
  if (!scopes.includes('write')) return [403];
  if (OWN_WRITES.has(route)) return own ? ok : [403];
  return ok;
}

describe('the token matrix: every scope, every route, own VM and another\'s', () => {
  const callers = [undefined, 'unknown-token', 'reader', 'writerA', 'readWrite', 'admin', 'the-full-token'];
  for (const who of callers) {
    for (const own of [true, false]) {
      if (own && who !== 'writerA') continue;
      it(`${who ?? 'no token'} on ${own ? 'its own VM' : "another's VM"}`, async () => {
        for (const [route, request] of ROUTES(own ? 'vm-a' : 'vm-b')) {
          const { store, as, close } = await registry();
          const before = await store.list();
          const response = await as(who, request);
          assert.ok(
            expected(who, route, own).includes(response.statusCode),
            `${who} ${route}: got ${response.statusCode} ${response.body}, expected ${expected(who, route, own)}`,
          );
          if (response.statusCode >= 400) {
            assert.match(JSON.parse(response.body).error, /\S/);
            assert.deepEqual(await store.list(), before, `${who} ${route}: a refused request changed nothing`);
          }
          await close();
        }
      });
    }
  }

  it('a write token owns what it registers, through POST and PUT, and nothing else', async () => {
    const { store, as } = await registry();
    assert.equal((await as('readWrite', { method: 'PUT', url: '/registry/vms/fresh', payload: { ...vm('fresh'), id: undefined } })).statusCode, 201);
    assert.equal((await store.get('fresh'))?.owner, 'readWrite');
    assert.equal((await as('readWrite', { method: 'PATCH', url: '/registry/vms/fresh', payload: { name: 'mine' } })).statusCode, 200);
    const refused = await as('writerA', { method: 'PATCH', url: '/registry/vms/fresh', payload: { name: 'theirs' } });
    assert.equal(refused.statusCode, 403);
    assert.match(JSON.parse(refused.body).error, /token "writerA" may only change VMs it registered/);
    assert.equal((await as('admin', { method: 'DELETE', url: '/registry/vms/fresh' })).statusCode, 200);
  });

  it('whoami answers the token name and its scopes', async () => {
    const { as } = await registry();
    assert.deepEqual(JSON.parse((await as('readWrite', { method: 'GET', url: '/registry/whoami' })).body), {
      name: 'readWrite',
      scopes: ['read', 'write'],
    });
    assert.deepEqual(JSON.parse((await as('the-full-token', { method: 'GET', url: '/registry/whoami' })).body).scopes, [
      'read',
      'write',
      'admin',
    ]);
  });

  it('whoami?vm= says whether the token may change that VM: a write token its own only, admin any, read none', async () => {
    const { as } = await registry();
    const mayChange = async (who: string, id: string) => {
      const response = await as(who, { method: 'GET', url: `/registry/whoami?vm=${id}` });
      assert.equal(response.statusCode, 200, response.body);
      return JSON.parse(response.body).mayChange;
    };
    assert.equal(await mayChange('writerA', 'vm-a'), true);
    assert.equal(await mayChange('writerA', 'vm-b'), false);
    assert.equal(await mayChange('admin', 'vm-b'), true);
    assert.equal(await mayChange('reader', 'vm-a'), false);
    const missing = await as('writerA', { method: 'GET', url: '/registry/whoami?vm=nobody' });
    assert.equal(missing.statusCode, 404);
    assert.match(JSON.parse(missing.body).error, /nobody/);
  });
});

describe('rate limiting', () => {
  /** An app allowing `perMinute` requests per caller, with read tokens named `<name>` whose secret is `<name>-secret`. */
  async function limited(perMinute: number, readers: string[]) {
    const tokens = new TokenRegistry(
      undefined,
      readers.map((name) => ({ name, sha256: sha256Hex(`${name}-secret`), scopes: ['read' as const] })),
    );
    const { app, close } = await testApp({ tokens, rateLimitPerMinute: perMinute });
    const list = (secret: string) => app.inject({ method: 'GET', url: '/registry/vms', headers: { authorization: `Bearer ${secret}` } });
    return { app, list, close };
  }

  it('answers 429 with Retry-After once a caller spends its budget, and counts each token apart', async () => {
    const { app, list, close } = await limited(5, ['busy', 'calm']);
    for (let i = 0; i < 5; i++) assert.equal((await list('busy-secret')).statusCode, 200);
    const refused = await list('busy-secret');
    assert.equal(refused.statusCode, 429);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.match(JSON.parse(refused.body).error, /token "busy" from 127\.0\.0\.1 sent more than 5 requests in a minute/);
    assert.equal((await list('calm-secret')).statusCode, 200, 'another token has its own budget');
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, '/health is never limited');
    await close();
  });

  it('counts refused requests too: wrong tokens spend their address’s budget, a token lacking the scope its own', async () => {
    const { app, list, close } = await limited(3, ['reader', 'other']);
    const register = (authorization?: string) =>
      app.inject({ method: 'POST', url: '/registry/vms', payload: {}, headers: authorization ? { authorization } : {} });
    const guesses = [];
    for (let i = 0; i < 4; i++) guesses.push((await register(`Bearer guess-${i}`)).statusCode);
    assert.deepEqual(guesses, [401, 401, 401, 429]);
    assert.match(JSON.parse((await register()).body).error, /address 127\.0\.0\.1 sent more than 3 requests/);
    const forbidden = [];
    for (let i = 0; i < 4; i++) forbidden.push((await register('Bearer reader-secret')).statusCode);
    assert.deepEqual(forbidden, [403, 403, 403, 429]);
    assert.equal((await list('other-secret')).statusCode, 200, 'a valid token has a budget of its own');
    await close();
  });
});

describe('authentication with VERS_AUTH_TOKEN', () => {
  let h: TestApp;
  before(async () => (h = await testApp({ authToken: 's3cret-token' })));
  const routes: InjectOptions[] = [
    { method: 'POST', url: '/registry/vms', payload: aRegistration() },
    { method: 'GET', url: '/registry/vms' },
    { method: 'GET', url: '/registry/vms/abc-123-def' },
    { method: 'PUT', url: '/registry/vms/abc-123-def', payload: aRegistration() },
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
