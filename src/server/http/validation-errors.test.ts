import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LIMITS } from '../../domain/schemas/vm.js';
import { aRegistration } from '../../testing/fixtures.js';
import { testApp, type TestApp } from '../../testing/app.js';

const billing = aRegistration();

describe('bad input: a 400 naming the problem, and nothing stored', () => {
  let h: TestApp;
  before(async () => (h = await testApp()));
  after(() => h.close());

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
