import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseJsonStream } from './support/json-stream.js';
import { startServer, tempDir, type ServerProcess } from './support/server-process.js';

/**
 * The seed document users already script against, run verbatim: each step takes the
 * bash block under one of its headings, unchanged, and runs it against a real server.
 * A curlrc adds only `--write-out` so that status codes can be checked without editing
 * a single command.
 */
const seed = readFileSync(new URL('../../test/fixtures/seed-api.md', import.meta.url), 'utf8');

function blockUnder(heading: string): string {
  const section = seed.split(/^#{2,3} /m).find((part) => part.startsWith(`${heading}\n`));
  const block = section && /```bash\n([\s\S]*?)```/.exec(section);
  assert.ok(block, `the seed has a bash block under "${heading}"`);
  return block[1];
}

const run = promisify(execFile);
const dir = tempDir();
let server: ServerProcess;

async function bash(script: string, options: { statusCodes?: boolean; env?: Record<string, string> } = {}) {
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
    env: {
      ...process.env,
      VERS_INFRA_URL: server.url,
      CURL_HOME: join(dir.path, options.statusCodes === false ? 'plain' : 'with-status'),
      ...options.env,
    },
  });
  return stdout;
}

/** Runs a block and pairs each response body with its status code. */
async function curl(script: string, env?: Record<string, string>) {
  const stdout = await bash(script, { env });
  return stdout
    .split(/<<STATUS (\d{3})>>/)
    .reduce<Array<{ status: number; body: any }>>((responses, part, i, parts) => {
      if (i % 2 === 1) responses.push({ status: Number(part), body: parseJsonStream(parts[i - 1])[0] });
      return responses;
    }, []);
}

describe('every curl of the seed, verbatim, against a real server', () => {
  before(async () => {
    for (const name of ['plain', 'with-status']) {
      const home = join(dir.path, name);
      await run('mkdir', ['-p', home]);
      writeFileSync(join(home, '.curlrc'), name === 'plain' ? '' : 'write-out = "<<STATUS %{http_code}>>"\n');
    }
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('Register a VM: 201 with the full entry, then 409 for the same id', async () => {
    const [created] = await curl(blockUnder('Register a VM'));
    assert.equal(created.status, 201);
    assert.deepEqual(
      { ...created.body, registeredAt: 'set', lastSeen: 'set' },
      {
        id: 'abc-123-def',
        name: 'billing-lt',
        role: 'lieutenant',
        status: 'running',
        address: 'abc-123-def.vm.vers.sh',
        registeredBy: 'orchestrator',
        services: [{ name: 'pi-rpc', port: 3001 }],
        metadata: { task: 'process invoices' },
        stale: false,
        registeredAt: 'set',
        lastSeen: 'set',
      },
    );
    assert.equal(created.body.registeredAt, created.body.lastSeen);
    const [again] = await curl(blockUnder('Register a VM'));
    assert.equal(again.status, 409);
    assert.match(again.body.error, /already registered/);
  });

  it('List VMs: all, by role, by status, and both combined', async () => {
    const responses = await curl(blockUnder('List VMs'));
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200, 200]);
    assert.deepEqual(responses.map((r) => r.body.count), [1, 1, 1, 0]);
    assert.deepEqual(responses[0].body.vms[0].id, 'abc-123-def');
  });

  it('Get a Single VM', async () => {
    const [response] = await curl(blockUnder('Get a Single VM'));
    assert.equal(response.status, 200);
    assert.equal(response.body.name, 'billing-lt');
  });

  it('Heartbeat: {id, lastSeen}', async () => {
    const [response] = await curl(blockUnder('Heartbeat'));
    assert.equal(response.status, 200);
    assert.deepEqual(Object.keys(response.body), ['id', 'lastSeen']);
    assert.equal(response.body.id, 'abc-123-def');
  });

  it('Update a VM: status and metadata change', async () => {
    const [response] = await curl(blockUnder('Update a VM'));
    assert.equal(response.status, 200);
    assert.equal(response.body.status, 'paused');
    assert.deepEqual(response.body.metadata, { reason: 'saving resources' });
  });

  it('Discover by Role: a paused lieutenant is not discovered', async () => {
    const responses = await curl(blockUnder('Discover by Role'));
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200]);
    assert.deepEqual(responses.map((r) => r.body.count), [0, 0, 0]);
  });

  it('Deregister a VM', async () => {
    const [response] = await curl(blockUnder('Deregister a VM'));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { deleted: true, id: 'abc-123-def' });
  });

  it('Register a Lieutenant After Creation, then discover it', async () => {
    const [created] = await curl(blockUnder('Register a Lieutenant After Creation'));
    assert.equal(created.status, 201);
    const [, lieutenants] = await curl(blockUnder('Discover by Role'));
    assert.deepEqual(lieutenants.body.vms.map((vm: { name: string }) => vm.name), ['billing']);
  });

  it('Self-Registration on Startup (with this server in place of localhost:3000)', async () => {
    const script = blockUnder('Self-Registration on Startup').replace('http://localhost:3000', server.url);
    const [created] = await curl(script);
    assert.equal(created.status, 201);
    assert.equal(created.body.id, hostname());
    assert.equal(created.body.services.length, 3);
  });

  it('Discover Infra to Find Board/Feed: the jq pipeline finds the infra address', async () => {
    const [assignment] = blockUnder('Discover Infra to Find Board/Feed').split('\n');
    const stdout = await bash(`${assignment}\necho "$INFRA"`, { statusCodes: false });
    assert.equal(stdout.trim(), `${hostname()}.vm.vers.sh`);
  });

  it('Heartbeat Pattern: the loop body beats for $MY_VM_ID', async () => {
    const line = blockUnder('Heartbeat Pattern').split('\n').find((l) => l.includes('curl'));
    const [response] = await curl(line!, { MY_VM_ID: 'abc-123-def' });
    assert.equal(response.status, 200);
    assert.equal(response.body.id, 'abc-123-def');
  });

  it('Check for Stale VMs: the jq filter lists running VMs with their lastSeen', async () => {
    const stdout = await bash(blockUnder('Check for Stale VMs'), { statusCodes: false });
    const rows = parseJsonStream(stdout) as Array<{ id: string; name: string; lastSeen: string }>;
    assert.deepEqual(rows.map((r) => r.id).sort(), ['abc-123-def', hostname()].sort());
    assert.ok(rows.every((r) => Object.keys(r).join() === 'id,name,lastSeen'));
  });
});
