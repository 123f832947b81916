import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance } from 'fastify';
import { systemClock } from '../src/domain/clock.js';
import { REVISION_PATTERN } from '../src/domain/schemas/query.js';
import { ID_PATTERN, LIMITS, RegistrationSchema, VmSchema } from '../src/domain/schemas/vm.js';
import { buildApp } from '../src/server/app.js';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { launchBrowser, pageErrors, type Browser } from './support/browser.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

/** Pages, not API: left out of the document on purpose. /docs/* is Swagger UI and its assets. */
const PAGES = new Set(['GET /ui', 'GET /ui/', 'GET /ui/:file', 'GET /registry/openapi.json']);
const isPage = (route: string) => PAGES.has(route) || /^GET \/docs(\/|$)/.test(route);

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

  it('gives an answer example wherever one cannot be derived from a schema: the event stream, whose VM is a valid VM, and /mcp', () => {
    const withoutExample: string[] = [];
    for (const [path, operations] of Object.entries<any>(doc.paths)) {
      for (const [method, operation] of Object.entries<any>(operations)) {
        for (const [type, { schema }] of Object.entries<any>(operation.responses?.['200']?.content ?? {})) {
          const derivable = schema?.type === 'object' || schema?.type === 'array' || schema?.$ref !== undefined;
          if (!derivable && !schema?.examples?.length) withoutExample.push(`${method.toUpperCase()} ${path} ${type}`);
        }
      }
    }
    assert.deepEqual(withoutExample, []);
    const [stream] = doc.paths['/registry/events'].get.responses['200'].content['text/event-stream'].schema.examples;
    const data = JSON.parse(/^data: (.*)$/m.exec(stream)![1]);
    const fields = Object.keys(data.vm);
    assert.deepEqual(VmSchema.required.filter((field: string) => !fields.includes(field)), [], 'the example VM has every field an answer has');
    assert.deepEqual(fields.filter((field) => !(field in VmSchema.properties)), [], 'and none an answer does not');
  });

  it('holds every route the app serves, and nothing it does not', () => {
    const served = routesOf(app).filter((route) => !isPage(route));
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
    assert.deepEqual(params.sort(), ['header:x-registry-min-index', 'query:health', 'query:index', 'query:role', 'query:service', 'query:stale', 'query:status', 'query:wait']);
  });

  it('documents ?health= and ?service= on list and discover, and the health verdict on each service answered', () => {
    const query = (path: string, name: string) => doc.paths[path].get.parameters.find((p: { name: string; in: string }) => p.in === 'query' && p.name === name);
    assert.deepEqual(query('/registry/vms', 'health').schema.enum, ['passing', 'critical', 'unknown']);
    assert.deepEqual(query('/registry/discover/{role}', 'health').schema.enum, ['any', 'passing', 'critical', 'unknown']);
    for (const path of ['/registry/vms', '/registry/discover/{role}']) {
      assert.match(query(path, 'health').description, /health/i, path);
      assert.equal(query(path, 'service').schema.maxLength, LIMITS.serviceNameLength, path);
      assert.match(query(path, 'service').description, /service/, path);
    }
    const answered = [
      doc.paths['/registry/vms/{id}'].get.responses['200'].content['application/json'].schema,
      doc.paths['/registry/discover/{role}'].get.responses['200'].content['application/json'].schema.properties.vms.items,
    ];
    for (const vm of answered) {
      const health = vm.properties.services.items.properties.health;
      assert.deepEqual(health.properties.status.enum, ['passing', 'critical', 'unknown']);
      assert.equal(health.properties.checkedAt.format, 'date-time');
      assert.equal(health.properties.output.type, 'string');
      assert.deepEqual(health.required, ['status']);
      assert.ok(!vm.properties.services.items.required.includes('health'), 'only checked services carry it');
    }
    const registration = doc.paths['/registry/vms'].post.requestBody.content['application/json'].schema;
    assert.equal(registration.properties.services.items.properties.health, undefined, 'clients never send it');
  });

  it('documents the X-Registry-Min-Index header on the reads a replica answers from its copy: list, get and discover', () => {
    for (const path of ['/registry/vms', '/registry/vms/{id}', '/registry/discover/{role}']) {
      const header = doc.paths[path].get.parameters.find((p: { name: string; in: string }) => p.in === 'header' && p.name === 'x-registry-min-index');
      assert.ok(header, path);
      assert.equal(header.required, false, path);
      assert.equal(header.schema.pattern, REVISION_PATTERN, path);
      assert.match(header.description, /revision/, path);
    }
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
  const TOKEN = 'docs-test-token';
  const dir = tempDir();
  let server: ServerProcess;
  let browser: Browser;
  let operations: number;

  before(async () => {
    server = await startServer({ env: { VERS_AUTH_TOKEN: TOKEN, HOST: '127.0.0.1', REGISTRY_DB: join(dir.path, 'registry.db') } });
    browser = await launchBrowser();
    const doc = (await (await fetch(`${server.url}/registry/openapi.json`)).json()) as { paths: Record<string, object> };
    operations = Object.values(doc.paths).reduce<number>((n, item) => n + Object.keys(item).length, 0);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    dir.remove();
  });

  for (const size of [{ width: 1400, height: 900 }, { width: 390, height: 844 }]) {
    it(`renders every operation at ${size.width}×${size.height} with no request leaving the server and no sideways scroll`, async () => {
      const page = await browser.context.newPage();
      await page.setViewportSize(size);
      const errors = pageErrors(page);
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      const response = await page.goto(`${server.url}/docs`);
      assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      await page.locator('.opblock').nth(operations - 1).waitFor();
      assert.equal(await page.locator('.opblock').count(), operations);
      const foreign = requests.filter((url) => !url.startsWith(`${server.url}/`) && !url.startsWith('data:'));
      assert.deepEqual(foreign, []);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth));
      assert.deepEqual(errors, []);
      await page.close();
    });
  }

  it('shows a request and an answer example built from the schemas', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/docs`);
    const register = page.locator('.opblock-post', { has: page.locator('[data-path="/registry/vms"]') });
    await register.locator('.opblock-summary').click();
    // Swagger UI's example values are generated from the schema: field names and formats.
    await register.locator('.body-param__example', { hasText: '"registeredBy"' }).waitFor();
    await register.locator('.responses-table .microlight', { hasText: '"registeredAt"' }).first().waitFor();
    await page.close();
  });

  it("tries a request with the token the dashboard keeps in this tab, through the server's own auth", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/ui`);
    // Once the dashboard has been refused and asks, it no longer touches the stored token.
    await page.locator('#sign-in').waitFor();
    await page.evaluate((token) => sessionStorage.setItem('vm-registry.token', token), TOKEN);
    await page.goto(`${server.url}/docs`);
    const whoami = page.locator('.opblock-get', { has: page.locator('[data-path="/registry/whoami"]') });
    await whoami.locator('.opblock-summary').click();
    await whoami.locator('.try-out__btn').click();
    await whoami.locator('.execute').click();
    await whoami.locator('.live-responses-table .response-col_status', { hasText: '200' }).waitFor();
    await whoami.locator('.live-responses-table .microlight', { hasText: '"admin"' }).first().waitFor();
    await page.close();
  });

  it('answers 401 to a try without a token', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/docs`);
    const whoami = page.locator('.opblock-get', { has: page.locator('[data-path="/registry/whoami"]') });
    await whoami.locator('.opblock-summary').click();
    await whoami.locator('.try-out__btn').click();
    await whoami.locator('.execute').click();
    await whoami.locator('.live-responses-table .response-col_status', { hasText: '401' }).waitFor();
    await page.close();
  });
});
