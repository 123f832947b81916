import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LIMITS } from '../src/domain/schemas/vm.js';
import { IMPORT_LIMITS } from '../src/domain/schemas/import.js';
import { startPostgres, type PostgresCluster } from './support/postgres.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';
import { writeTokensFile, type TestToken } from './support/tokens.js';

const RATE_LIMIT = 300;
const TOKENS = { admin: ['admin'], reader: ['read'], writer: ['write'], rival: ['write'], spender: ['admin'] } as const;
type Caller = keyof typeof TOKENS | 'nobody';

const vm = (id: string) => ({ id, name: id, role: 'worker', address: `${id}.vm.vers.sh`, registeredBy: 'openapi-test' });

/**
 * The document's answers, checked against a real server on PostgreSQL with scoped tokens and a
 * rate limit (the configuration in which a route can give the most answers): every route is
 * driven into each answer it can give, every status observed must be documented for its
 * route, and every status documented must have been observed.
 */
describe('the responses /registry/openapi.json documents are the ones each route gives', () => {
  const dir = tempDir();
  let cluster: PostgresCluster;
  let server: ServerProcess;
  let documented: Map<string, number[]>;
  const observed = new Map<string, Set<number>>();

  /** Sends one request as `caller` and checks the status it was meant to provoke; `op` is the document's "METHOD /path/{param}". */
  async function provoke(op: string, expected: number, caller: Caller, path: string, init: { body?: string; headers?: Record<string, string> } = {}) {
    const [method] = op.split(' ');
    const headers: Record<string, string> = { ...init.headers };
    if (caller !== 'nobody') headers.authorization = `Bearer ${caller}-secret`;
    const controller = new AbortController();
    const response = await fetch(`${server.url}${path}`, { method, body: init.body, headers, signal: controller.signal });
    // Event streams never end by themselves: the status is all this needs.
    if (response.headers.get('content-type')?.startsWith('text/event-stream')) controller.abort();
    else await response.arrayBuffer();
    assert.equal(response.status, expected, `${op} as ${caller} on ${path.slice(0, 60)}`);
    record(op, response.status);
  }

  const record = (op: string, status: number) => observed.set(op, (observed.get(op) ?? new Set()).add(status));

  /**
   * Announces a body one byte over `limit` and sends only the headers: the server refuses it by
   * its Content-Length, and a client still writing megabytes would see the connection close under it.
   */
  async function provokeOversized(op: string, path: string, limit: number) {
    const [method] = op.split(' ');
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = connect(server.port, '127.0.0.1', () =>
        socket.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-secret\r\nContent-Length: ${limit + 1}\r\n\r\n`),
      );
      socket.on('data', (chunk) => {
        text += chunk;
        if (text.includes('\r\n\r\n')) socket.destroy();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
    assert.equal(status, 413, `${op} with a body over ${limit} bytes`);
    record(op, status);
  }

  before(async () => {
    cluster = await startPostgres();
    const tokensFile = writeTokensFile(
      join(dir.path, 'tokens.json'),
      Object.entries(TOKENS).map(([name, scopes]): TestToken => [name, `${name}-secret`, scopes]),
    );
    server = await startServer({
      env: {
        DATABASE_URL: await cluster.createDatabase('openapi'),
        REGISTRY_TOKENS_FILE: tokensFile,
        REGISTRY_RATE_LIMIT: String(RATE_LIMIT),
      },
    });
    const doc = (await (await fetch(`${server.url}/registry/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    documented = new Map(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, Object.keys(operation.responses).map(Number)]),
      ),
    );
  });
  after(async () => {
    await server?.stop();
    cluster?.destroy();
    dir.remove();
  });

  it('drives every route into each of its answers, and each is documented', async () => {
    const register = 'POST /registry/vms';
    await provoke(register, 201, 'writer', '/registry/vms', { body: JSON.stringify(vm('owned')) });
    await provoke(register, 409, 'writer', '/registry/vms', { body: JSON.stringify(vm('owned')) });
    await provoke(register, 400, 'admin', '/registry/vms', { body: '{}' });
    await provoke(register, 401, 'nobody', '/registry/vms', { body: JSON.stringify(vm('anon')) });
    await provoke(register, 403, 'reader', '/registry/vms', { body: JSON.stringify(vm('read-only')) });
    await provokeOversized(register, '/registry/vms', LIMITS.bodyBytes);

    const list = 'GET /registry/vms';
    await provoke(list, 200, 'reader', '/registry/vms?role=worker');
    await provoke(list, 400, 'reader', '/registry/vms?roles=worker');
    await provoke(list, 401, 'nobody', '/registry/vms');
    await provoke(list, 403, 'writer', '/registry/vms');

    const put = 'PUT /registry/vms/{id}';
    await provoke(put, 201, 'writer', '/registry/vms/second', { body: JSON.stringify(vm('second')) });
    await provoke(put, 200, 'writer', '/registry/vms/second', { body: JSON.stringify(vm('second')) });
    await provoke(put, 400, 'writer', '/registry/vms/second', { body: '{"name": ""}' });
    await provoke(put, 401, 'nobody', '/registry/vms/second', { body: JSON.stringify(vm('second')) });
    await provoke(put, 403, 'rival', '/registry/vms/owned', { body: JSON.stringify(vm('owned')) });
    await provoke(put, 412, 'admin', '/registry/vms/owned', { body: JSON.stringify(vm('owned')), headers: { 'if-match': '"999"' } });
    await provokeOversized(put, '/registry/vms/owned', LIMITS.bodyBytes);

    const get = 'GET /registry/vms/{id}';
    await provoke(get, 200, 'reader', '/registry/vms/owned');
    await provoke(get, 400, 'reader', '/registry/vms/not%20an%20id');
    await provoke(get, 401, 'nobody', '/registry/vms/owned');
    await provoke(get, 403, 'writer', '/registry/vms/owned');
    await provoke(get, 404, 'reader', '/registry/vms/missing');

    const patch = 'PATCH /registry/vms/{id}';
    await provoke(patch, 200, 'writer', '/registry/vms/owned', { body: '{"name": "renamed"}' });
    await provoke(patch, 400, 'writer', '/registry/vms/owned', { body: '{}' });
    await provoke(patch, 401, 'nobody', '/registry/vms/owned', { body: '{"name": "x"}' });
    await provoke(patch, 403, 'rival', '/registry/vms/owned', { body: '{"name": "x"}' });
    await provoke(patch, 404, 'admin', '/registry/vms/missing', { body: '{"name": "x"}' });
    await provoke(patch, 412, 'admin', '/registry/vms/owned', { body: '{"name": "x"}', headers: { 'if-match': '"999"' } });
    await provokeOversized(patch, '/registry/vms/owned', LIMITS.bodyBytes);

    const heartbeat = 'POST /registry/vms/{id}/heartbeat';
    await provoke(heartbeat, 200, 'writer', '/registry/vms/owned/heartbeat');
    await provoke(heartbeat, 400, 'writer', '/registry/vms/owned/heartbeat?at=now');
    await provoke(heartbeat, 401, 'nobody', '/registry/vms/owned/heartbeat');
    await provoke(heartbeat, 403, 'rival', '/registry/vms/owned/heartbeat');
    await provoke(heartbeat, 404, 'admin', '/registry/vms/missing/heartbeat');
    await provokeOversized(heartbeat, '/registry/vms/owned/heartbeat', LIMITS.bodyBytes);

    const remove = 'DELETE /registry/vms/{id}';
    await provoke(remove, 200, 'writer', '/registry/vms/second');
    await provoke(remove, 400, 'admin', '/registry/vms/owned?force=true');
    await provoke(remove, 401, 'nobody', '/registry/vms/owned');
    await provoke(remove, 403, 'rival', '/registry/vms/owned');
    await provoke(remove, 404, 'admin', '/registry/vms/missing');
    await provoke(remove, 412, 'admin', '/registry/vms/owned', { headers: { 'if-match': '"999"' } });
    await provokeOversized(remove, '/registry/vms/owned', LIMITS.bodyBytes);

    const discover = 'GET /registry/discover/{role}';
    await provoke(discover, 200, 'reader', '/registry/discover/worker');
    await provoke(discover, 400, 'reader', '/registry/discover/workers');
    await provoke(discover, 401, 'nobody', '/registry/discover/worker');
    await provoke(discover, 403, 'writer', '/registry/discover/worker');

    const events = 'GET /registry/events';
    await provoke(events, 200, 'reader', '/registry/events?since=0');
    await provoke(events, 400, 'reader', '/registry/events?since=latest');
    await provoke(events, 401, 'nobody', '/registry/events');
    await provoke(events, 403, 'writer', '/registry/events');
    await provoke(events, 410, 'reader', '/registry/events?since=999999');

    const importing = 'POST /registry/import';
    await provoke(importing, 200, 'admin', '/registry/import', { body: '{"vms": []}' });
    await provoke(importing, 400, 'admin', '/registry/import', { body: '{}' });
    await provoke(importing, 401, 'nobody', '/registry/import', { body: '{"vms": []}' });
    await provoke(importing, 403, 'writer', '/registry/import', { body: '{"vms": []}' });
    await provokeOversized(importing, '/registry/import', IMPORT_LIMITS.bodyBytes);

    const whoami = 'GET /registry/whoami';
    await provoke(whoami, 200, 'reader', '/registry/whoami');
    await provoke(whoami, 400, 'reader', '/registry/whoami?verbose=1');
    await provoke(whoami, 401, 'nobody', '/registry/whoami');
    await provoke(whoami, 404, 'reader', '/registry/whoami?vm=nobody');

    const metrics = 'GET /metrics';
    await provoke(metrics, 200, 'reader', '/metrics');
    await provoke(metrics, 400, 'reader', '/metrics?name=x');
    await provoke(metrics, 401, 'nobody', '/metrics');
    await provoke(metrics, 403, 'writer', '/metrics');

    const health = 'GET /health';
    await provoke(health, 200, 'nobody', '/health');
    await provoke(health, 400, 'nobody', '/health?full=1');

    const index = 'GET /';
    await provoke(index, 200, 'nobody', '/');
    await provoke(index, 400, 'nobody', '/?links=all');
    const browser = await fetch(`${server.url}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(browser.status, 302, 'GET / from a browser');
    record(index, browser.status);

    // MCP over Streamable HTTP: a session opens with an initialize POST and is named by its header after.
    const mcpPost = 'POST /mcp';
    const mcpHeaders = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'openapi-test', version: '1' } },
    });
    const opened = await fetch(`${server.url}/mcp`, { method: 'POST', body: initialize, headers: { ...mcpHeaders, authorization: 'Bearer reader-secret' } });
    await opened.arrayBuffer();
    record(mcpPost, opened.status);
    assert.equal(opened.status, 200, 'an MCP session opens');
    const session = { ...mcpHeaders, 'mcp-session-id': opened.headers.get('mcp-session-id') ?? '' };
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });
    await provoke(mcpPost, 400, 'reader', '/mcp', { body: ping, headers: mcpHeaders });
    await provoke(mcpPost, 401, 'nobody', '/mcp', { body: initialize, headers: mcpHeaders });
    await provoke(mcpPost, 403, 'writer', '/mcp', { body: initialize, headers: mcpHeaders });
    await provoke(mcpPost, 404, 'reader', '/mcp', { body: ping, headers: { ...mcpHeaders, 'mcp-session-id': 'no-such-session' } });
    await provokeOversized(mcpPost, '/mcp', LIMITS.bodyBytes);
    const mcpGet = 'GET /mcp';
    await provoke(mcpGet, 200, 'reader', '/mcp', { headers: session });
    await provoke(mcpGet, 400, 'reader', '/mcp', { headers: mcpHeaders });
    await provoke(mcpGet, 401, 'nobody', '/mcp', { headers: session });
    await provoke(mcpGet, 403, 'writer', '/mcp', { headers: session });
    await provoke(mcpGet, 404, 'reader', '/mcp', { headers: { ...mcpHeaders, 'mcp-session-id': 'no-such-session' } });
    const mcpDelete = 'DELETE /mcp';
    await provoke(mcpDelete, 400, 'reader', '/mcp', { headers: mcpHeaders });
    await provoke(mcpDelete, 401, 'nobody', '/mcp', { headers: session });
    await provoke(mcpDelete, 403, 'writer', '/mcp', { headers: session });
    await provoke(mcpDelete, 404, 'reader', '/mcp', { headers: { ...mcpHeaders, 'mcp-session-id': 'no-such-session' } });
    await provokeOversized(mcpDelete, '/mcp', LIMITS.bodyBytes);
    await provoke(mcpDelete, 200, 'reader', '/mcp', { headers: session });

    // The rate limit: once the spender's minute is spent, every /registry route answers 429.
    for (let i = 0; i < RATE_LIMIT; i++) await (await fetch(`${server.url}/registry/whoami`, { headers: { authorization: 'Bearer spender-secret' } })).arrayBuffer();
    for (const op of [...documented.keys()].filter((op) => op.includes(' /registry/') || op.endsWith(' /mcp'))) {
      await provoke(op, 429, 'spender', op.split(' ')[1].replace('{id}', 'owned').replace('{role}', 'worker'));
    }

    // PostgreSQL goes away: every route that reads the store answers 503, and only those.
    cluster.stop();
    try {
      await provoke(register, 503, 'admin', '/registry/vms', { body: JSON.stringify(vm('during-outage')) });
      await provoke(list, 503, 'reader', '/registry/vms');
      await provoke(put, 503, 'admin', '/registry/vms/owned', { body: JSON.stringify(vm('owned')) });
      await provoke(get, 503, 'reader', '/registry/vms/owned');
      await provoke(patch, 503, 'admin', '/registry/vms/owned', { body: '{"name": "x"}' });
      await provoke(heartbeat, 503, 'admin', '/registry/vms/owned/heartbeat');
      await provoke(remove, 503, 'admin', '/registry/vms/owned');
      await provoke(discover, 503, 'reader', '/registry/discover/worker');
      await provoke(events, 503, 'reader', '/registry/events?since=0');
      await provoke(importing, 503, 'admin', '/registry/import', { body: JSON.stringify({ vms: [] }) });
      await provoke(whoami, 200, 'reader', '/registry/whoami');
      await provoke(metrics, 200, 'reader', '/metrics');
      await provoke(health, 503, 'nobody', '/health');
      await provoke('GET /', 200, 'nobody', '/');
    } finally {
      cluster.start();
    }
  });

  it('documents no status a route cannot give', () => {
    for (const [op, statuses] of documented) {
      assert.deepEqual([...(observed.get(op) ?? [])].sort(), [...statuses].sort(), `${op}: observed, then documented`);
    }
  });

  it('documents every status observed, for a route it documents', () => {
    for (const [op, statuses] of observed) {
      const listed = documented.get(op);
      assert.ok(listed, `${op} is in the document`);
      for (const status of statuses) assert.ok(listed.includes(status), `${op} answered ${status}, which it does not document`);
    }
  });
});
