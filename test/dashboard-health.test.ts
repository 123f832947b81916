import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, pageErrors, type Browser } from './support/browser.js';
import { FAST_CHECKS, Target } from './support/health-target.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

describe('the dashboard shows each checked service’s health and filters by it', () => {
  const dir = tempDir();
  /** The VMs' services, all on one local port: /broken answers 500, every other path 200. */
  let target: Target;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  const register = async (id: string, services: unknown[], status = 'running') => {
    const response = await fetch(`${server.url}/registry/vms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: id, role: 'lieutenant', address: '127.0.0.1', registeredBy: 'dashboard-health', status, services }),
    });
    assert.equal(response.status, 201, await response.text());
  };
  const dot = (id: string) => page.locator(`.row[data-vm-id="${id}"] .c-services .health-dot`);
  const shown = () => page.$$eval('.row:not([hidden])', (rows) => rows.map((r) => (r as HTMLElement).dataset.vmId!).sort());
  const showing = (ids: string[]) =>
    page.waitForFunction(
      (want) => [...document.querySelectorAll<HTMLElement>('.row:not([hidden])')].map((r) => r.dataset.vmId).sort().join() === want,
      ids.join(),
    );

  before(async () => {
    target = await Target.start();
    target.paths.set('/broken', 'fail');
    const { port } = target;
    server = await startServer({
      env: { HOST: '127.0.0.1', REGISTRY_DB: join(dir.path, 'registry.db'), ...FAST_CHECKS, REGISTRY_HEALTH_HOSTS: '127.0.0.1' },
    });
    await register('vm-up', [{ name: 'pi-rpc', port, healthPath: '/health' }]);
    await register('vm-down', [{ name: 'pi-rpc', port, healthPath: '/broken' }, { name: 'board', port: 3000 }]);
    await register('vm-plain', [{ name: 'pi-rpc', port: 3001 }]);
    // Paused VMs are not checked: their services stay unknown.
    await register('vm-paused', [{ name: 'pi-rpc', port, healthPath: '/health' }], 'paused');
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = pageErrors(page);
    await page.goto(`${server.url}/ui`);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await target?.close();
    dir.remove();
  });

  it('a dot per checked service, with the verdict, its time and output in the tooltip; none for a service without a healthPath', async () => {
    await dot('vm-up').and(page.locator('.health-passing')).waitFor();
    await dot('vm-down').and(page.locator('.health-critical')).waitFor();
    assert.match((await dot('vm-down').getAttribute('title'))!, /^pi-rpc critical since \d{4}-\d\d-\d\dT[\d:.]+Z: HTTP 500$/);
    assert.match((await dot('vm-up').getAttribute('title'))!, /^pi-rpc passing since \S+: HTTP 200$/);
    assert.equal(await dot('vm-down').count(), 1, 'board has no healthPath, so no dot');
    assert.equal(await dot('vm-plain').count(), 0);
    assert.equal(await dot('vm-paused').getAttribute('title'), 'pi-rpc unknown: not checked yet');
    assert.ok(await dot('vm-paused').and(page.locator('.health-unknown')).isVisible());

    await page.locator('.row[data-vm-id="vm-down"]').click();
    await page.locator('#details .services li', { hasText: /pi-rpc — port \d+, health \/broken\s*critical since .*: HTTP 500/ }).waitFor();
    await page.locator('#details .close').click();
  });

  it('filters all / passing / critical / unknown by the rule ?health= uses, keeps the filter in the URL, and follows changes live', async () => {
    await page.selectOption('#health-filter', 'critical');
    await showing(['vm-down']);
    assert.match(page.url(), /[?&]health=critical/);
    await page.selectOption('#health-filter', 'passing');
    // A service without a healthPath is never in doubt: vm-plain counts as passing.
    await showing(['vm-plain', 'vm-up']);
    await page.selectOption('#health-filter', 'unknown');
    await showing(['vm-paused']);
    await page.selectOption('#health-filter', '');
    await showing(['vm-down', 'vm-paused', 'vm-plain', 'vm-up']);
    assert.doesNotMatch(page.url(), /health=/);

    await page.goto(`${server.url}/ui?health=critical&role=lieutenant`);
    await showing(['vm-down']);
    assert.equal(await page.inputValue('#health-filter'), 'critical');
    target.paths.set('/health', 'fail');
    // The checker marks vm-up critical; its `updated` event brings it into the filtered view.
    await showing(['vm-down', 'vm-up']);
    await dot('vm-up').and(page.locator('.health-critical')).waitFor();
    assert.deepEqual(await shown(), ['vm-down', 'vm-up']);
    assert.deepEqual(errors, []);
  });
});
