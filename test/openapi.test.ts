import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance } from 'fastify';
import { systemClock } from '../src/domain/clock.js';
import { ID_PATTERN, LIMITS, RegistrationSchema } from '../src/domain/schemas.js';
import { buildApp } from '../src/server/app.js';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { launchBrowser, pageErrors } from './support/browser.js';
import { startServer, tempDir } from './support/server-process.js';

/** Pages, not API: left out of the document on purpose. */
const PAGES = new Set(['GET /ui', 'GET /ui/', 'GET /ui/:file', 'GET /docs', 'GET /registry/openapi.json']);

/**
 * Every method and URL the app routes, read from Fastify's own route tree (printRoutes), so
 * that a route added later without a document entry fails this test. HEAD routes are the
 * automatic twins of GET routes.
 */
function routesOf(app: FastifyInstance): string[] {
  const path: string[] = [];
  const routes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    path.length = depth;
    path.push(match[2]);
    for (const method of match[3]?.split(', ') ?? []) if (method !== 'HEAD') routes.push(`${method} ${path.join('')}`);
  }
  return routes;
}

describe('/registry/openapi.json', () => {
  const dir = tempDir();
  let store: SqliteStore;
  let app: FastifyInstance;
  let doc: any;

  before(async () => {
    store = openSqliteStore({ file: join(dir.path, 'registry.db'), clock: systemClock, staleAfterMs: 60_000 });
    app = await buildApp({ store, clock: systemClock, authToken: 'secret' });
    const response = await app.inject({ url: '/registry/openapi.json' });
    assert.equal(response.statusCode, 200, 'public, like /health, even with auth on');
    doc = JSON.parse(response.body);
  });
  after(async () => {
    await app.close();
    await store.close();
    dir.remove();
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    assert.equal(doc.openapi, '3.1.0');
    await SwaggerParser.validate(structuredClone(doc));
  });

  it('holds every route the app serves, and nothing it does not', () => {
    const served = routesOf(app).filter((route) => !PAGES.has(route));
    assert.ok(served.length >= 12, `only ${served.length} routes found: ${served.join(', ')}`);
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item as object).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    assert.deepEqual(documented.sort(), served.sort());
  });

  it('carries the schemas that validate requests, not a copy', () => {
    const body = doc.paths['/registry/vms'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(Object.keys(body.properties).sort(), Object.keys(RegistrationSchema.properties).sort());
    assert.deepEqual(body.required.sort(), [...RegistrationSchema.required!].sort());
    assert.equal(body.properties.id.pattern, ID_PATTERN);
    assert.equal(body.properties.id.maxLength, LIMITS.idLength);
    assert.equal(body.additionalProperties, false);
    const params = doc.paths['/registry/vms'].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
    assert.deepEqual(params.sort(), ['query:index', 'query:role', 'query:stale', 'query:status', 'query:wait']);
  });

  it('documents services[].protocol in requests, and stale as a required boolean of every VM answered', () => {
    const body = doc.paths['/registry/vms'].post.requestBody.content['application/json'].schema;
    const protocol = body.properties.services.items.properties.protocol;
    assert.equal(protocol.type, 'string');
    assert.equal(protocol.maxLength, LIMITS.protocolLength);
    assert.ok(!body.properties.services.items.required.includes('protocol'), 'protocol is optional');
    const answers = [
      doc.paths['/registry/vms/{id}'].get.responses['200'],
      doc.paths['/registry/vms/{id}'].patch.responses['200'],
      doc.paths['/registry/vms'].post.responses['201'],
    ].map((response) => response.content['application/json'].schema);
    const listed = ['/registry/vms', '/registry/discover/{role}'].map(
      (path) => doc.paths[path].get.responses['200'].content['application/json'].schema.properties.vms.items,
    );
    for (const vm of [...answers, ...listed]) {
      assert.equal(vm.properties.stale.type, 'boolean');
      assert.ok(vm.required.includes('stale'), 'stale is required');
    }
  });

  it('marks the routes behind the token, and only those', () => {
    const secured = (path: string, method: string) => Boolean(doc.paths[path][method].security?.length);
    assert.ok(secured('/registry/vms', 'post'));
    assert.ok(secured('/registry/events', 'get'));
    assert.ok(secured('/metrics', 'get'));
    assert.ok(secured('/mcp', 'post'));
    assert.ok(!secured('/health', 'get'));
    assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: 'VERS_AUTH_TOKEN' });
  });
});

describe('/docs', () => {
  it('renders every operation of the document in a real browser, with no page errors', async () => {
    const dir = tempDir();
    const server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
    const browser = await launchBrowser();
    try {
      const doc = (await (await fetch(`${server.url}/registry/openapi.json`)).json()) as { paths: Record<string, object> };
      const operations = Object.values(doc.paths).reduce<number>((n, item) => n + Object.keys(item).length, 0);
      const page = await browser.context.newPage();
      const errors = pageErrors(page);
      const response = await page.goto(`${server.url}/docs`);
      assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      await page.locator('details.op').nth(operations - 1).waitFor();
      assert.equal(await page.locator('details.op').count(), operations);
      await page.locator('details.op', { hasText: 'Register a VM' }).first().locator('summary').click();
      await page.locator('details.op[open] pre', { hasText: ID_PATTERN.replace(/\\/g, '\\\\') }).first().waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
      dir.remove();
    }
  });
});
