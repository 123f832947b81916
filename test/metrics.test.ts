import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/domain/clock.js';
import { buildApp } from '../src/server/app.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const TOKEN = 'metrics-test-token';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus' text format 0.0.4 into samples; comment and TYPE lines are checked separately. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; undefined when there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${found.length} samples match ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

describe('GET /metrics on a real server', () => {
  const dir = tempDir();
  let server: ServerProcess;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const scrape = async () => {
    const response = await call('GET', '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parseMetrics(await response.text());
  };
  const until = async (check: (samples: Sample[]) => boolean, what: string) => {
    for (let deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      if (check(await scrape())) return;
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  before(async () => {
    server = await startServer({
      env: { VERS_AUTH_TOKEN: TOKEN, HOST: '127.0.0.1', REGISTRY_DB: join(dir.path, 'registry.db'), REGISTRY_STALE_AFTER: '2s', REGISTRY_REAP_AFTER: '1s' },
    });
  });
  after(async () => {
    await server?.stop();
    dir.remove();
  });

  it('is behind the token when auth is on', async () => {
    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 401);
  });

  it('counts registrations, heartbeats and deregistrations, and the VMs by role, status and staleness', async () => {
    const register = (id: string, role: string, status = 'running') =>
      call('POST', '/registry/vms', { id, name: id, role, status, address: `${id}.vm.vers.sh`, registeredBy: 'metrics-test' });
    for (const [id, role, status] of [['w-1', 'worker'], ['w-2', 'worker'], ['i-1', 'infra', 'paused'], ['g-1', 'golden']]) {
      assert.equal((await register(id, role, status)).status, 201);
    }
    for (let i = 0; i < 5; i++) assert.equal((await call('POST', '/registry/vms/w-1/heartbeat')).status, 200);
    assert.equal((await call('POST', '/registry/vms/nobody/heartbeat')).status, 404);
    assert.equal((await call('DELETE', '/registry/vms/g-1')).status, 200);

    const samples = await scrape();
    assert.equal(value(samples, 'vm_registry_registrations_total'), 4);
    assert.equal(value(samples, 'vm_registry_heartbeats_total'), 5);
    assert.equal(value(samples, 'vm_registry_deregistrations_total'), 1);
    assert.equal(value(samples, 'vm_registry_vms', { role: 'worker', status: 'running', stale: 'false' }), 2);
    assert.equal(value(samples, 'vm_registry_vms', { role: 'infra', status: 'paused', stale: 'false' }), 1);
    assert.equal(value(samples, 'vm_registry_vms', { role: 'golden', status: 'running', stale: 'false' }), 0);
    assert.ok((value(samples, 'vm_registry_revision') ?? 0) >= 5);
  });

  it('times requests per route pattern, never per raw URL', async () => {
    const samples = await scrape();
    const heartbeat = { method: 'POST', route: '/registry/vms/:id/heartbeat' };
    assert.equal(value(samples, 'vm_registry_http_request_duration_seconds_count', { ...heartbeat, status_code: '200' }), 5);
    assert.equal(value(samples, 'vm_registry_http_request_duration_seconds_count', { ...heartbeat, status_code: '404' }), 1);
    assert.equal(value(samples, 'vm_registry_http_request_duration_seconds_bucket', { ...heartbeat, status_code: '200', le: '+Inf' }), 5);
    assert.equal(value(samples, 'vm_registry_http_request_duration_seconds_count', { method: 'GET', route: '/metrics', status_code: '401' }), 1);
    const routes = new Set(samples.filter((s) => s.name.startsWith('vm_registry_http_')).map((s) => s.labels.route));
    for (const route of routes) assert.doesNotMatch(route, /w-1|nobody|g-1/, `raw URL in a route label: ${route}`);
  });

  it('times store operations and reports event-loop lag', async () => {
    const samples = await scrape();
    assert.equal(value(samples, 'vm_registry_store_operation_duration_seconds_count', { operation: 'heartbeat' }), 6);
    assert.equal(value(samples, 'vm_registry_store_operation_duration_seconds_count', { operation: 'register' }), 4);
    assert.ok((value(samples, 'vm_registry_store_operation_duration_seconds_sum', { operation: 'register' }) ?? 0) > 0);
    assert.ok(value(samples, 'nodejs_eventloop_lag_seconds') !== undefined);
    assert.ok(value(samples, 'nodejs_eventloop_lag_p99_seconds') !== undefined);
  });

  it('counts open event streams', async () => {
    const watching = new AbortController();
    const stream = await fetch(`${server.url}/registry/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: watching.signal });
    assert.equal(stream.status, 200);
    await until((s) => value(s, 'vm_registry_sse_watchers') === 1, 'one watcher');
    watching.abort();
    await until((s) => value(s, 'vm_registry_sse_watchers') === 0, 'no watchers');
  });

  it('shows VMs going stale, then counts their reaping', async () => {
    await until((s) => value(s, 'vm_registry_vms', { role: 'worker', status: 'running', stale: 'true' }) === 2, 'two stale workers');
    await until((s) => value(s, 'vm_registry_reaps_total') === 2, 'two reaps');
    const samples = await scrape();
    assert.equal(value(samples, 'vm_registry_vms', { role: 'worker', status: 'running', stale: 'true' }), 0);
    assert.equal(value(samples, 'vm_registry_vms', { role: 'infra', status: 'paused', stale: 'false' }), 1, 'paused VMs are never stale');
  });
});

describe('REGISTRY_METRICS_PUBLIC', () => {
  it('serves /metrics without the token while /registry still needs it', async () => {
    const dir = tempDir();
    const store = openSqliteStore({ file: join(dir.path, 'registry.db'), clock: systemClock, staleAfterMs: 60_000 });
    const app = await buildApp({ store, clock: systemClock, authToken: 'secret', metricsPublic: true });
    try {
      assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/registry/vms' })).statusCode, 401);
    } finally {
      await app.close();
      await store.close();
      dir.remove();
    }
  });
});
