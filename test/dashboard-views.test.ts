import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, pageErrors, type Browser } from './support/browser.js';
import { writeTokensFile } from './support/tokens.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const ADMIN = 'views-admin-secret';
const READER = 'views-reader-secret';
const WRITER = 'views-writer-secret';
const SIZES = [
  { name: 'desktop', width: 1400, height: 900 },
  { name: 'phone', width: 390, height: 844 },
];

const swarm = [
  { id: 'vm-infra-01', name: 'orchestrator', role: 'infra', services: [{ name: 'registry', port: 3000, healthPath: '/health' }] },
  { id: 'vm-lt-billing', name: 'billing-lt', role: 'lieutenant', services: [{ name: 'pi-rpc', port: 3001 }], metadata: { task: 'process invoices' } },
  { id: 'vm-lt-search', name: 'search-lt', role: 'lieutenant', services: [{ name: 'pi-rpc', port: 3001 }] },
  ...Array.from({ length: 9 }, (_, i) => ({
    id: `vm-worker-${String(i + 1).padStart(2, '0')}`,
    name: `worker-${['delta', 'alpha', 'kilo', 'echo', 'bravo', 'india', 'golf', 'charlie', 'hotel'][i]}`,
    role: 'worker',
    services: [{ name: 'pi-rpc', port: 3001 }],
    metadata: { task: `shard ${i + 1}` },
  })),
  { id: 'vm-golden-node20', name: 'golden-node20', role: 'golden', status: 'paused', metadata: { image: 'node20-pi' } },
].map((vm) => ({ address: `${vm.id}.vm.vers.sh`, registeredBy: 'orchestrator', ...vm }));

describe('dashboard views: layouts, URLs, keyboard, timeline and tokens', () => {
  const dir = tempDir();
  let server: ServerProcess;
  let browser: Browser;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(response.ok, `${method} ${path}: ${response.status}`);
    return response.json();
  };
  /** A page signed in with `token`, at `size`, on `path`. */
  const openPage = async (token: string, size: { width: number; height: number }, path = '/ui') => {
    const page = await browser.context.newPage();
    await page.setViewportSize(size);
    await page.goto(`${server.url}/ui`);
    // Once the page has been refused and asks, it no longer touches the stored token.
    await page.locator('#sign-in').waitFor();
    await page.evaluate((t) => sessionStorage.setItem('vm-registry.token', t), token);
    await page.goto(`${server.url}${path}`);
    await page.locator('.row:not([hidden])').first().waitFor();
    return page;
  };
  const shownIds = (page: Page) =>
    page.$$eval('.row:not([hidden])', (rows) =>
      rows
        .map((r) => ({ id: (r as HTMLElement).dataset.vmId!, y: new DOMMatrix(getComputedStyle(r).transform).m42 }))
        .sort((a, b) => a.y - b.y)
        .map((r) => r.id),
    );
  const overflows = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

  before(async () => {
    const tokensFile = writeTokensFile(join(dir.path, 'tokens.json'), [
      ['admin', ADMIN, ['admin']],
      ['reader', READER, ['read']],
      ['writer', WRITER, ['read', 'write']],
    ]);
    server = await startServer({ env: { REGISTRY_TOKENS_FILE: tokensFile, HOST: '127.0.0.1', REGISTRY_DB: join(dir.path, 'registry.db') } });
    for (const vm of swarm) await api('POST', '/registry/vms', vm);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    dir.remove();
  });

  for (const size of SIZES) {
    it(`at ${size.width}×${size.height} the page never scrolls sideways, with or without the details open`, async () => {
      const page = await openPage(ADMIN, size);
      const errors = pageErrors(page);
      assert.equal(await overflows(page), false);
      await page.locator('.row[data-vm-id="vm-lt-billing"]').click();
      await page.locator('#details .metadata', { hasText: 'process invoices' }).waitFor();
      assert.equal(await overflows(page), false);
      const close = await page.locator('#details .close').boundingBox();
      assert.ok(close && close.x >= 0 && close.x + close.width <= size.width, 'the × is on screen');
      if (size.name === 'phone') {
        const panel = await page.locator('#details').boundingBox();
        assert.deepEqual([panel?.x, panel?.width], [0, size.width], 'the panel takes the whole screen');
        assert.ok(await page.locator('.row[data-vm-id="vm-lt-billing"] .c-address').isVisible(), 'the card shows the address');
      }
      // Screenshots for the docs are taken on request so that a test run leaves the tree clean.
      if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: `docs/dashboard-${size.name}.png` });
      await page.close();
      assert.deepEqual(errors, []);
    });
  }

  it('keeps sort and filters in the URL: a reload and a shared link open the same view; back and forward step through it', async () => {
    const page = await openPage(ADMIN, SIZES[0]);
    await page.click('.thead .sort[data-sort="name"]');
    await page.selectOption('#role-filter', 'worker');
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 9);
    assert.match(page.url(), /role=worker/);
    assert.match(page.url(), /sort=name/);
    const sorted = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'golf', 'hotel', 'india', 'kilo'].map(
      (n) => swarm.find((vm) => vm.name === `worker-${n}`)!.id,
    );
    assert.deepEqual(await shownIds(page), sorted);

    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 9);
    assert.deepEqual(await shownIds(page), sorted);
    assert.equal(await page.inputValue('#role-filter'), 'worker');

    const shared = await openPage(ADMIN, SIZES[1], new URL(page.url()).pathname + new URL(page.url()).search);
    await shared.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 9);
    assert.deepEqual(await shownIds(shared), sorted);
    await shared.close();

    await page.goBack();
    await page.waitForFunction((n) => document.querySelectorAll('.row:not([hidden])').length === n, swarm.length);
    assert.equal(await page.inputValue('#role-filter'), '');
    await page.goForward();
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 9);
    await page.close();
  });

  it('moves through rows with the arrow keys, opens one with Enter and closes it with Esc', async () => {
    const page = await openPage(ADMIN, SIZES[0], '/ui?sort=name');
    await page.focus('#rows');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const second = (await shownIds(page))[1];
    await page.locator(`.row.cursor[data-vm-id="${second}"]`).waitFor();
    await page.keyboard.press('Enter');
    await page.locator('#details .fields dd', { hasText: second }).first().waitFor();
    assert.match(page.url(), new RegExp(`vm=${second}`));
    await page.keyboard.press('Escape');
    await page.locator('#details').waitFor({ state: 'hidden' });
    assert.doesNotMatch(page.url(), /vm=/);
    await page.close();
  });

  it('shows a change made over REST in the timeline as it happens, linked to its VM and filterable by role and VM', async () => {
    const page = await openPage(ADMIN, SIZES[0]);
    await page.locator('#events .event-registered[data-vm-id="vm-infra-01"]').waitFor();
    await api('PATCH', '/registry/vms/vm-lt-search', { status: 'paused' });
    const change = page.locator('#events .event-updated[data-vm-id="vm-lt-search"]');
    await change.waitFor();
    await page.selectOption('#events-role', 'worker');
    await change.waitFor({ state: 'detached' });
    await page.selectOption('#events-role', 'lieutenant');
    await page.fill('#events-vm', 'search');
    await change.waitFor();
    assert.equal(await page.locator('#events .event').count(), 2, 'its registration and its update');
    await change.locator('a.event-vm').click();
    await page.locator('#details .fields dd', { hasText: 'paused' }).first().waitFor();
    assert.match(page.url(), /vm=vm-lt-search/);
    await page.close();
  });

  it('offers a read-only token no buttons that would change the registry', async () => {
    const page = await openPage(READER, SIZES[0], '/ui?vm=vm-lt-billing');
    await page.locator('#details .metadata', { hasText: 'process invoices' }).waitFor();
    assert.ok(await page.locator('#read-only').isVisible());
    assert.equal(await page.locator('#details [data-action]').count(), 0);
    await page.close();
  });

  it("offers a write token buttons on the VMs it registered, and none on another token's", async () => {
    const own = { id: 'vm-writers-own', name: 'writers-own', role: 'worker', address: 'vm-writers-own.vm.vers.sh', registeredBy: 'writer' };
    const registered = await fetch(`${server.url}/registry/vms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WRITER}`, 'content-type': 'application/json' },
      body: JSON.stringify(own),
    });
    assert.equal(registered.status, 201);
    const page = await openPage(WRITER, SIZES[0], `/ui?vm=${own.id}`);
    await page.locator('#details [data-action]').first().waitFor();
    assert.ok(await page.locator('#read-only').isHidden());
    await page.goto(`${server.url}/ui?vm=vm-lt-billing`);
    await page.locator('#details .not-owned', { hasText: 'may change only the VMs it registered' }).waitFor();
    assert.equal(await page.locator('#details [data-action]').count(), 0);
    await page.close();
  });

  it('says which store and replica serve it, and that the feed is live', async () => {
    const page = await openPage(ADMIN, SIZES[0]);
    const health = (await (await fetch(`${server.url}/health`)).json()) as { replica: string };
    await page.locator('#cluster', { hasText: `SQLite file · replica ${health.replica}` }).waitFor();
    await page.locator('#cluster', { hasText: 'event log: last 10,000 changes' }).waitFor();
    await page.locator('#connection.live', { hasText: /^live · revision \d+$/ }).waitFor();
    await page.close();
  });
});
