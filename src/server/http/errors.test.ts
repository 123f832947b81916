import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { beforeEach, describe, it } from 'node:test';
import { LIMITS } from '../../domain/schemas/vm.js';
import { aRegistration } from '../../testing/fixtures.js';
import { testApp, type TestApp } from '../../testing/app.js';

const billing = aRegistration();

describe('what real clients send', () => {
  let h: TestApp;
  beforeEach(async () => (h = await testApp()));

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

describe('slow clients', () => {
  it('a client that never finishes its headers is disconnected', async () => {
    const { app, close } = await testApp({ timeouts: { headersMs: 300, requestMs: 600 } });
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
      await close();
    }
  });
});
