import assert from 'node:assert/strict';
import { maxHeaderSize } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LIMITS } from '../src/domain/schemas/vm.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const registration = { name: 'n', role: 'worker', address: 'a.vm.vers.sh', registeredBy: 'http-errors-test' };

/** Sends bytes as they are (fetch would refuse or repair what these tests need to send) and answers the raw response. */
function rawRequest(port: number, bytes: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    socket.on('data', (chunk) => (answer += chunk));
    // The server may answer and close before it has read all that was sent.
    socket.on('error', (error) => (answer ? undefined : reject(error)));
    socket.on('close', () => {
      const [head, body] = answer.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body });
    });
  });
}

describe('errors the HTTP framework raises answer {"error": "…"} naming the limit or rule', () => {
  const dir = tempDir();
  let server: ServerProcess;
  const call = async (method: string, path: string, init: RequestInit = {}) => {
    const response = await fetch(`${server.url}${path}`, { method, ...init });
    return { status: response.status, headers: response.headers, body: (await response.json()) as { error?: string } };
  };
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('accepts an id of the longest length allowed on every route with an :id', async () => {
    const id = 'x'.repeat(LIMITS.idLength);
    const put = await call('PUT', `/registry/vms/${id}`, { body: JSON.stringify(registration) });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal((await call('GET', `/registry/vms/${id}`)).status, 200);
    assert.equal((await call('PATCH', `/registry/vms/${id}`, { body: '{"name": "renamed"}' })).status, 200);
    assert.equal((await call('POST', `/registry/vms/${id}/heartbeat`)).status, 200);
    assert.equal((await call('DELETE', `/registry/vms/${id}`)).status, 200);
  });

  it('answers an id over the limit 400 with the limit, on every route with an :id', async () => {
    const id = 'x'.repeat(LIMITS.idLength + 1);
    for (const [method, path] of [
      ['GET', `/registry/vms/${id}`],
      ['PUT', `/registry/vms/${id}`],
      ['PATCH', `/registry/vms/${id}`],
      ['DELETE', `/registry/vms/${id}`],
      ['POST', `/registry/vms/${id}/heartbeat`],
      ['GET', `/registry/vms/${'y'.repeat(2000)}`],
    ]) {
      const answer = await call(method, path, method === 'PUT' || method === 'PATCH' ? { body: JSON.stringify(registration) } : {});
      assert.equal(answer.status, 400, `${method} ${path.slice(0, 40)}…`);
      assert.deepEqual(answer.body, { error: `path parameter id must be at most ${LIMITS.idLength} characters` });
    }
  });

  it('answers a path with a broken %-escape 400 naming it', async () => {
    const answer = await call('GET', '/registry/vms/abc%E0%A4%A');
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, { error: 'the URL path "/registry/vms/abc%E0%A4%A" holds a malformed %-escape' });
  });

  it('answers a method a known path does not serve 405 with Allow, and an unknown path 404', async () => {
    for (const [method, path, allowed] of [
      ['PUT', '/registry/vms', 'GET, HEAD, POST'],
      ['DELETE', '/registry/vms', 'GET, HEAD, POST'],
      ['POST', '/registry/vms/abc', 'DELETE, GET, HEAD, PATCH, PUT'],
      ['GET', '/registry/vms/abc/heartbeat', 'POST'],
      ['POST', '/health', 'GET, HEAD'],
      ['OPTIONS', '/registry/discover/infra', 'GET, HEAD'],
    ] as const) {
      const answer = await call(method, `${path}?role=infra`);
      assert.equal(answer.status, 405, `${method} ${path}`);
      assert.equal(answer.headers.get('allow'), allowed);
      assert.deepEqual(answer.body, { error: `${path} does not answer ${method}; it answers ${allowed}` });
    }
    const unknown = await call('GET', '/registry/nothing-here?x=1');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body, { error: 'no route for GET /registry/nothing-here' });
  });

  it('answers a Content-Type that is not a media type 415 naming the header', async () => {
    const answer = await call('POST', '/registry/vms', { body: '{}', headers: { 'content-type': '/' } });
    assert.equal(answer.status, 415);
    assert.deepEqual(answer.body, {
      error: 'Content-Type "/" is not a media type; send the body as JSON, with Content-Type application/json or none',
    });
  });

  it('answers a body over the limit 413 with the limit, and a body that is not JSON 400 saying where', async () => {
    const big = await call('POST', '/registry/vms', { body: `"${'a'.repeat(LIMITS.bodyBytes)}"` });
    assert.equal(big.status, 413);
    assert.deepEqual(big.body, { error: `request body is larger than the limit of ${LIMITS.bodyBytes} bytes` });
    const broken = await call('POST', '/registry/vms', { body: '{"id": ' });
    assert.equal(broken.status, 400);
    assert.match(broken.body.error!, /^request body is not valid JSON: .*JSON/);
  });

  it('answers a URL and headers over what the server reads 431 with the limit', async () => {
    const answer = await rawRequest(server.port, `GET /registry/vms?role=${'a'.repeat(maxHeaderSize)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(answer.status, 431);
    assert.match(answer.headers, /content-type: application\/json/);
    assert.deepEqual(JSON.parse(answer.body), {
      error: `the request line and headers are larger than ${maxHeaderSize} bytes, the most this server reads`,
    });
  });
});

describe('a query parameter a route does not know is a 400 naming it and the accepted ones', () => {
  const dir = tempDir();
  let server: ServerProcess;
  const get = async (path: string, method = 'GET', body?: object) => {
    const response = await fetch(`${server.url}${path}`, { method, body: body && JSON.stringify(body) });
    return { status: response.status, body: await response.text() };
  };
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
    await fetch(`${server.url}/registry/vms/known`, { method: 'PUT', body: JSON.stringify(registration) });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('names the typo and lists what the route accepts', async () => {
    for (const [path, unknown, accepted] of [
      ['/registry/vms?roles=infra', 'roles', 'role, status, stale, health, service, index, wait'],
      ['/registry/vms?role=worker&staleness=true', 'staleness', 'role, status, stale, health, service, index, wait'],
      ['/registry/discover/worker?role=worker', 'role', 'health, service, index, wait'],
      ['/registry/events?since=0&from=3', 'from', 'since, role, id'],
      ['/registry/whoami?force=1', 'force', 'vm'],
    ]) {
      const answer = await get(path);
      assert.equal(answer.status, 400, path);
      assert.deepEqual(JSON.parse(answer.body), { error: `unknown query parameter "${unknown}"; accepted: ${accepted}` });
    }
  });

  it('refuses any query parameter on the routes that take none', async () => {
    const before = await get('/registry/vms/known');
    for (const [method, path, body] of [
      ['GET', '/registry/vms/known'],
      ['POST', '/registry/vms/known/heartbeat'],
      ['PATCH', '/registry/vms/known', { name: 'renamed' }],
      ['PUT', '/registry/vms/known', { ...registration, name: 'replaced' }],
      ['DELETE', '/registry/vms/known'],
      ['POST', '/registry/vms', { ...registration, id: 'another' }],
      ['POST', '/registry/import', { vms: [] }],
      ['GET', '/health'],
      ['GET', '/metrics'],
    ] as const) {
      const answer = await get(`${path}?force=1`, method, body);
      assert.equal(answer.status, 400, `${method} ${path}`);
      assert.deepEqual(JSON.parse(answer.body), { error: 'unknown query parameter "force"; this route takes none' });
    }
    assert.deepEqual(await get('/registry/vms/known'), before, 'nothing was changed or deleted');
    assert.equal((await get('/registry/vms/another')).status, 404, 'nor registered');
  });

  it('still answers the parameters it knows, and leaves the pages alone', async () => {
    for (const path of [
      '/registry/vms?role=worker&status=running',
      '/registry/vms?stale=false',
      '/registry/vms?index=0&wait=1s',
      '/registry/discover/worker?index=0',
    ]) {
      const answer = await get(path);
      assert.equal(answer.status, 200, path);
      assert.equal(JSON.parse(answer.body).count, 1);
    }
    for (const path of ['/ui?token=x', '/ui/dashboard.js?v=2', '/docs?x=1', '/registry/openapi.json?v=1']) {
      assert.equal((await get(path)).status, 200, path);
    }
  });
});
