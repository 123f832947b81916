import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const dir = tempDir();
let server: ServerProcess;

interface Answer {
  status: number;
  body: string;
}

/** A raw request: node:http sends what fetch would refuse to (odd methods, bodies on GET). */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    let req;
    try {
      // A fresh connection each time: a request Node's parser rejects closes its socket.
      req = request(`${server.url}${path}`, { method, headers, timeout: 5000, agent: false });
    } catch {
      return resolve(undefined); // the client itself refused the request (an invalid header or method)
    }
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in 5 s to ${method} ${path}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const snapshot = async () => {
  const answer = await send('GET', '/registry/vms', {});
  return JSON.parse(answer!.body) as { vms: unknown[]; revision: number };
};

const ids = ['fuzz-a', 'fuzz-b', 'no-such-vm'];
const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('', ' ', '__proto__', 'constructor', '%00', '..', 'a'.repeat(300)));
const anything = fc.oneof(
  fc.anything(),
  text,
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, 0.1, -0, 65536, 0),
);

const registration = fc.record(
  {
    id: fc.oneof(fc.constantFrom(...ids), text, anything),
    name: fc.oneof(text, anything),
    role: fc.oneof(fc.constantFrom('infra', 'lieutenant', 'worker', 'golden', 'custom'), text),
    status: fc.oneof(fc.constantFrom('running', 'paused', 'stopped'), text),
    address: fc.oneof(text, anything),
    registeredBy: fc.oneof(text, anything),
    services: fc.oneof(fc.array(fc.record({ name: text, port: fc.oneof(fc.integer(), anything), healthPath: text })), anything),
    metadata: fc.oneof(fc.dictionary(text, anything), anything),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  registration.map((value) => JSON.stringify(value)),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  text,
  fc.integer({ min: 1, max: 20_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1, max: 5_000 }).map((depth) => `{"id":"deep","name":"d","role":"worker","address":"a","registeredBy":"f","metadata":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
  fc.constantFrom(
    '{"__proto__":{"polluted":true},"id":"proto","name":"p","role":"worker","address":"a","registeredBy":"f"}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"name":"x","metadata":{"__proto__":{"polluted":true}}}',
  ),
);

const path = fc.oneof(
  fc.constantFrom('/registry/vms', '/health', '/registry/import', '/registry', '/', '/registry/vms/'),
  fc.constantFrom(...ids).map((id) => `/registry/vms/${id}`),
  fc.constantFrom(...ids).map((id) => `/registry/vms/${id}/heartbeat`),
  text.map((id) => `/registry/vms/${encodeURIComponent(id)}`),
  text.map((id) => `/registry/vms/${encodeURIComponent(id)}/heartbeat`),
  fc.oneof(fc.constantFrom('infra', 'worker'), text).map((role) => `/registry/discover/${encodeURIComponent(role)}`),
  text.map((since) => `/registry/events?since=${encodeURIComponent(since)}x`),
);

// Blocking-query parameters are left out: a valid index at the current revision would wait.
const query = fc.dictionary(fc.oneof(fc.constantFrom('role', 'status', 'stale', 'wait'), text), text, { maxKeys: 3 });

const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16'),
    'if-match': fc.oneof(text, fc.constantFrom('"1"', 'W/"2"', '*', '"99999999999999999999"')),
    'last-event-id': text,
    'x-request-id': text,
  },
  { requiredKeys: [] },
);

const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'), fc.constantFrom('PROPFIND', 'TRACE', 'CONNECT'));

describe('fuzzing every route with fast-check', () => {
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'fuzz.db'), LOG_LEVEL: 'info' } });
    for (const id of ['fuzz-a', 'fuzz-b']) {
      await send('POST', '/registry/vms', { 'content-type': 'application/json' }, JSON.stringify({ id, name: id, role: 'worker', address: 'a', registeredBy: 'f' }));
    }
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('random methods, paths, queries, headers and bodies get only 2xx or 4xx, and a rejected request changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(method, path, query, headers, fc.option(body), async (m, p, q, h, b) => {
        const search = new URLSearchParams(q).toString();
        const url = search ? `${p}${p.includes('?') ? '&' : '?'}${search}` : p;
        const before = await snapshot();
        let answer: Answer | undefined;
        try {
          answer = await send(m, url, h, b ?? undefined);
        } catch (error) {
          // CONNECT and malformed requests can be closed by Node's parser itself: never by a crash.
          assert.equal(server.child.exitCode, null, `server died on ${m} ${url}: ${error}`);
          return;
        }
        if (!answer) return;
        assert.ok(answer.status >= 200 && answer.status < 500, `${m} ${url} ${b?.slice(0, 200)} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
        assert.doesNotMatch(answer.body, /\bat \S+:\d+:\d+|SQLITE_[A-Z]+|no such (table|column)|\/work\/|node_modules/, 'no stack, SQL or path leaks');
        if (answer.status >= 400) assert.deepEqual(await snapshot(), before, `${m} ${url} was rejected with ${answer.status} (${answer.body}) but changed the registry`);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      }),
      { numRuns: 400, includeErrorInReport: true },
    );
    assert.equal(server.child.exitCode, null, 'the process is still up');
    const health = await send('GET', '/health', {});
    assert.equal(health?.status, 200);
    assert.doesNotMatch(server.output(), /"level":50/, `no server errors logged:\n${server.output().split('\n').filter((l) => l.includes('"level":50')).slice(0, 3).join('\n')}`);
  });
});
