import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, pageErrors, type Browser } from './support/browser.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const COUNT = 10_000;
const ROLES = ['infra', 'lieutenant', 'worker', 'golden', 'custom'];

describe('the dashboard with 10,000 VMs', () => {
  const dir = tempDir();
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
  };
  const entry = (i: number, task: string) => {
    const now = Date.now();
    return {
      id: `vm-${String(i).padStart(5, '0')}`,
      name: `agent-${i}`,
      role: ROLES[i % ROLES.length],
      address: `vm-${i}.vm.vers.sh`,
      registeredBy: 'load-test',
      services: [{ name: 'pi-rpc', port: 3001 }],
      metadata: { task, shard: i },
      // Older ids registered earlier, so vm-00000 is last in the registry's order.
      registeredAt: new Date(now - (COUNT - i) * 1000).toISOString(),
      lastSeen: new Date(now).toISOString(),
    };
  };
  const renderedRows = () => page.locator('.row').count();
  // Row elements are reused as the list scrolls: the top one is the one drawn at offset 0.
  const topRow = () => page.locator('.row:not([hidden])[style*="translateY(0px)"]');

  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: `${dir.path}/registry.db` } });
    await post('/registry/import', { vms: Array.from({ length: COUNT }, (_, i) => entry(i, 'crawl')) });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = pageErrors(page);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    dir.remove();
  });

  it('loads them all and keeps only the rows in view in the DOM', async () => {
    const started = Date.now();
    await page.goto(`${server.url}/ui`);
    await page.locator('#showing', { hasText: 'showing 10,000 of 10,000' }).waitFor({ timeout: 20_000 });
    assert.ok(Date.now() - started < 10_000, `first render took ${Date.now() - started} ms`);
    assert.ok((await renderedRows()) < 80, `${await renderedRows()} rows in the DOM`);
    assert.equal(await topRow().getAttribute('data-vm-id'), 'vm-09999');
  });

  it('scrolls to the last VM, drawing it from the same few row elements', async () => {
    await page.$eval('#rows', (rows) => (rows.scrollTop = rows.scrollHeight));
    await page.locator('.row[data-vm-id="vm-00000"]').waitFor();
    assert.ok((await renderedRows()) < 80);
  });

  it('applies a burst of 1,000 changes without a long stall, drawing once per frame', async () => {
    await page.$eval('#rows', (rows) => (rows.scrollTop = 0));
    await page.evaluate(() => {
      const w = window as unknown as { longest: number };
      w.longest = 0;
      new PerformanceObserver((list) => {
        for (const task of list.getEntries()) w.longest = Math.max(w.longest, task.duration);
      }).observe({ type: 'longtask' });
    });
    // An import is one transaction with an event per VM: the page hears 1,000 events at once.
    await post('/registry/import', { vms: Array.from({ length: 1000 }, (_, i) => entry(COUNT - 1 - i, 'rebalance')) });
    await page.fill('#search', 'rebalance');
    await page.locator('#showing', { hasText: 'showing 1,000 of 10,000' }).waitFor({ timeout: 10_000 });
    const longest = await page.evaluate(() => (window as unknown as { longest: number }).longest);
    assert.ok(longest < 500, `the longest task took ${longest} ms`);
    await page.fill('#search', '');
  });

  it('shows a new registration at the top, live', async () => {
    await post('/registry/vms', { id: 'vm-newest', name: 'newest', role: 'worker', address: 'vm-newest.vm.vers.sh', registeredBy: 'load-test' });
    await page.locator('#showing', { hasText: 'showing 10,001 of 10,001' }).waitFor();
    assert.equal(await topRow().getAttribute('data-vm-id'), 'vm-newest');
    assert.deepEqual(errors, []);
  });
});
