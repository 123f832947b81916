import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, pageErrors, type Browser } from './support/browser.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

const TOKEN = 'dashboard-test-token';

const named = [
  {
    id: 'vm-orchestrator-01',
    name: 'orchestrator',
    role: 'infra',
    address: 'vm-orchestrator-01.vm.vers.sh',
    services: [{ name: 'registry', port: 3000, healthPath: '/health' }, { name: 'board', port: 3100 }],
    metadata: { region: 'eu-west', swarm: 'invoices' },
  },
  { id: 'vm-lt-billing', name: 'billing-lt', role: 'lieutenant', address: 'vm-lt-billing.vm.vers.sh', services: [{ name: 'pi-rpc', port: 3001 }], metadata: { task: 'process invoices', workers: 3 } },
  { id: 'vm-lt-search', name: 'search-lt', role: 'lieutenant', address: 'vm-lt-search.vm.vers.sh', services: [{ name: 'pi-rpc', port: 3001 }] },
  { id: 'vm-worker-a1', name: 'worker-a1', role: 'worker', address: 'vm-worker-a1.vm.vers.sh', services: [{ name: 'pi-rpc', port: 3001 }], metadata: { task: 'parse PDF batch 17', lieutenant: 'billing-lt' } },
  { id: 'vm-worker-a2', name: 'worker-a2', role: 'worker', address: 'vm-worker-a2.vm.vers.sh', services: [{ name: 'pi-rpc', port: 3001 }], metadata: { task: 'parse PDF batch 18', lieutenant: 'billing-lt' } },
  { id: 'vm-golden-node20', name: 'golden-node20', role: 'golden', address: 'vm-golden-node20.vm.vers.sh', status: 'paused', metadata: { image: 'node20-pi', commit: '3f9c2e1' } },
];
// Enough ordinary workers to make the screenshot look like a swarm.
const shards = Array.from({ length: 8 }, (_, i) => ({
  id: `vm-worker-c${String(i + 1).padStart(2, '0')}`,
  name: `indexer-${i + 1}`,
  role: 'worker',
  address: `vm-worker-c${String(i + 1).padStart(2, '0')}.vm.vers.sh`,
  services: [{ name: 'pi-rpc', port: 3001 }, { name: 'metrics', port: 9100, healthPath: '/healthz' }],
  metadata: { task: `index shard ${i + 1}`, lieutenant: 'search-lt' },
}));
const fleet = [...named, ...shards];
/** Never heartbeats: the sweeper announces it stale once REGISTRY_STALE_AFTER has passed. */
const quiet = { id: 'vm-worker-quiet', name: 'worker-quiet', role: 'worker', address: 'vm-worker-quiet.vm.vers.sh', metadata: { task: 'crashed mid-batch' } };

describe('the dashboard in headless Chromium', () => {
  const dir = tempDir();
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let heartbeats: NodeJS.Timeout;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };
  const row = (id: string) => page.locator(`.row[data-vm-id="${id}"]`);
  // Row elements are reused as the list changes: the top one is the one drawn at offset 0.
  const topRow = () => page.locator('.row:not([hidden])[style*="translateY(0px)"]');

  before(async () => {
    server = await startServer({
      env: { VERS_AUTH_TOKEN: TOKEN, HOST: '127.0.0.1', REGISTRY_DB: `${dir.path}/registry.db`, REGISTRY_STALE_AFTER: '3s' },
    });
    for (const vm of [...fleet, quiet]) await api('POST', '/registry/vms', { registeredBy: 'orchestrator', ...vm });
    heartbeats = setInterval(() => {
      for (const vm of fleet) void api('POST', `/registry/vms/${vm.id}/heartbeat`).catch(() => {});
    }, 500);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = pageErrors(page);
  });

  after(async () => {
    clearInterval(heartbeats);
    await browser?.close();
    await server?.stop();
    dir.remove();
  });

  it('asks for the token once, keeps it in sessionStorage and never in the URL, then lists every VM', async () => {
    await page.goto(`${server.url}/ui`);
    await page.locator('#sign-in').waitFor();
    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    await page.locator('#sign-in-error', { hasText: 'not valid' }).waitFor();
    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type=submit]');
    for (const vm of [...fleet, quiet]) await row(vm.id).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('vm-registry.token')), TOKEN);
    assert.ok(!page.url().includes(TOKEN));

    await page.reload();
    await row(fleet[0].id).waitFor();
    assert.ok(await page.locator('#sign-in').isHidden(), 'a reload does not ask again');
    // The browser logs the two refusals above (no token, wrong token); nothing else may appear.
    assert.deepEqual(errors.filter((error) => !error.includes('status of 401')), []);
    errors.length = 0;
    assert.ok(await page.locator('#read-only').isHidden(), 'the full token may write');
  });

  it('shows role, status, address, services and a relative lastSeen in each row, and counts per role', async () => {
    const orchestrator = row('vm-orchestrator-01');
    assert.equal(await orchestrator.locator('.role').textContent(), 'infra');
    assert.equal(await orchestrator.locator('.status').textContent(), 'running');
    assert.equal(await orchestrator.locator('.c-address').textContent(), 'vm-orchestrator-01.vm.vers.sh');
    assert.equal(await orchestrator.locator('.c-services').textContent(), 'registry:3000, board:3100');
    assert.match((await orchestrator.locator('.c-seen').textContent()) ?? '', /just now|\ds ago/);
    assert.equal(await row('vm-golden-node20').locator('.status').textContent(), 'paused');
    assert.equal(await page.locator('.role-chip[data-role="worker"] .chip-count').textContent(), '11');
    assert.equal(await page.locator('.role-chip[data-role="lieutenant"] .chip-count').textContent(), '2');
  });

  it('shows a new registration live, newest first, without a reload', async () => {
    await api('POST', '/registry/vms', {
      id: 'vm-worker-b1',
      name: 'worker-b1',
      role: 'worker',
      address: 'vm-worker-b1.vm.vers.sh',
      registeredBy: 'billing-lt',
      services: [{ name: 'pi-rpc', port: 3001 }],
      metadata: { task: 'reconcile ledger' },
    });
    await row('vm-worker-b1').waitFor();
    assert.equal(await topRow().getAttribute('data-vm-id'), 'vm-worker-b1');
    assert.equal(await page.locator('.role-chip[data-role="worker"] .chip-count').textContent(), '12');
  });

  it('drops a deregistered VM live', async () => {
    await api('DELETE', '/registry/vms/vm-lt-search');
    await row('vm-lt-search').waitFor({ state: 'detached' });
    assert.equal(await page.locator('.role-chip[data-role="lieutenant"] .chip-count').textContent(), '1');
  });

  it('marks a VM stale once it misses its heartbeats, and filters by staleness', async () => {
    await page.locator('.row.is-stale[data-vm-id="vm-worker-quiet"] .stale-badge').waitFor({ timeout: 10_000 });
    assert.ok(await row('vm-orchestrator-01').locator('.stale-badge').isHidden());
    const dot = (id: string) =>
      row(id).locator('.status').evaluate((status) => getComputedStyle(status, '::before').color);
    assert.equal(await row('vm-worker-quiet').locator('.status').textContent(), 'running');
    assert.notEqual(await dot('vm-worker-quiet'), await dot('vm-orchestrator-01'), "a stale running VM does not get running's green dot");
    assert.equal(await dot('vm-orchestrator-01'), 'rgb(31, 157, 85)', 'a live running VM does');
    await page.locator('.role-chip[data-role="worker"] .chip-stale', { hasText: '1 stale' }).waitFor();
    await page.selectOption('#stale-filter', 'stale');
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 1);
    assert.equal(await page.locator('.row:not([hidden])').getAttribute('data-vm-id'), 'vm-worker-quiet');
    await page.selectOption('#stale-filter', '');
  });

  it('searches text across fields and metadata, and filters by role and status', async () => {
    const shown = () => page.$$eval('.row:not([hidden])', (rows) => rows.map((r) => (r as HTMLElement).dataset.vmId).sort());
    await page.fill('#search', 'pdf batch');
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 2);
    assert.deepEqual(await shown(), ['vm-worker-a1', 'vm-worker-a2']);
    await page.fill('#search', '');
    await page.click('.role-chip[data-role="lieutenant"]');
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 1);
    assert.deepEqual(await shown(), ['vm-lt-billing']);
    await page.click('.role-chip[data-role="lieutenant"]');
    await page.selectOption('#status-filter', 'paused');
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 1);
    assert.deepEqual(await shown(), ['vm-golden-node20']);
    await page.selectOption('#status-filter', '');
    await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 15);
  });

  it('shows metadata on demand and pauses, stops and deregisters only after confirmation', async () => {
    await row('vm-worker-a2').click();
    await page.locator('#details .metadata', { hasText: 'parse PDF batch 18' }).waitFor();

    await page.click('#details [data-action="deregister"]');
    await page.locator('dialog#confirm[open]').waitFor();
    await page.click('dialog#confirm .confirm-cancel');
    assert.equal((await api('GET', '/registry/vms/vm-worker-a2')).status, 'running', 'cancel leaves the VM alone');

    await page.click('#details [data-action="pause"]');
    assert.match((await page.locator('dialog#confirm .confirm-text').textContent()) ?? '', /Pause worker-a2 \(vm-worker-a2\)\?/);
    await page.click('dialog#confirm .confirm-ok');
    await row('vm-worker-a2').locator('.status', { hasText: 'paused' }).waitFor();
    assert.equal((await api('GET', '/registry/vms/vm-worker-a2')).status, 'paused');

    await page.click('#details [data-action="stop"]');
    await page.click('dialog#confirm .confirm-ok');
    await row('vm-worker-a2').locator('.status', { hasText: 'stopped' }).waitFor();

    await page.click('#details [data-action="deregister"]');
    await page.click('dialog#confirm .confirm-ok');
    await row('vm-worker-a2').waitFor({ state: 'detached' });
    await page.locator('#details .gone').waitFor();
    const gone = await fetch(`${server.url}/registry/vms/vm-worker-a2`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(gone.status, 404);
  });

  it('keeps a screenshot as a CI artifact, with no page errors along the way', async () => {
    await page.click('#details .close');
    await row('vm-lt-billing').click();
    await page.locator('#details .metadata', { hasText: 'process invoices' }).waitFor();
    mkdirSync('artifacts', { recursive: true });
    await page.screenshot({ path: 'artifacts/dashboard.png' });
    assert.deepEqual(errors, []);
  });
});
