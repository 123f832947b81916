import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

describe('GET / and the cluster in /health', () => {
  const dir = tempDir();
  let server: ServerProcess;

  before(async () => {
    server = await startServer({
      env: { VERS_AUTH_TOKEN: 'root-test', HOST: '127.0.0.1', REGISTRY_DB: join(dir.path, 'registry.db'), REGISTRY_EVENT_RETENTION: '500' },
    });
  });
  after(async () => {
    await server?.stop();
    dir.remove();
  });

  it('redirects a browser, which asks for HTML, to the dashboard', async () => {
    const response = await fetch(`${server.url}/`, {
      headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
      redirect: 'manual',
    });
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), '/ui');
  });

  it('answers curl, with no token, a short JSON index of links', async () => {
    const response = await fetch(`${server.url}/`, { headers: { accept: '*/*' } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    const body = (await response.json()) as { name: string; links: Record<string, string> };
    assert.equal(body.name, 'vm-registry');
    assert.equal(body.links.dashboard, '/ui');
    assert.equal(body.links.docs, '/docs');
    for (const path of [body.links.health, body.links.openapi, body.links.docs]) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, `${path} is where the index says`);
    }
  });

  it('/health names the replica, its start and the event-log window', async () => {
    const health = (await (await fetch(`${server.url}/health`)).json()) as Record<string, unknown>;
    assert.match(String(health.replica), /^.+\/\d+$/);
    assert.equal(health.replica, `${String(health.replica).split('/')[0]}/${server.child.pid}`);
    assert.ok(Date.parse(String(health.startedAt)) <= Date.now());
    assert.equal(health.eventRetention, 500);
    assert.deepEqual(health.store, { kind: 'sqlite', ok: true });
  });
});
