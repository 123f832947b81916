import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sha256Hex } from '../src/server/http/tokens.js';
import { runCli, startServer, tempDir } from './support/server-process.js';
import { Watcher } from './support/watch.js';
import { writeTokensFile } from './support/tokens.js';

const dir = tempDir();
after(() => dir.remove());
let files = 0;
const fresh = (suffix: string) => join(dir.path, `${files++}-${suffix}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const vm = (id: string) => ({ id, name: id, role: 'worker', address: `${id}.vm.vers.sh`, registeredBy: 'security-test' });
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
/**
 * A GET sent from one loopback address (127.0.0.1, 127.0.0.2 …): resolves once the answer's
 * headers arrive, so that an event stream can be held open and closed later.
 */
const getFrom = (localAddress: string, url: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; text(): Promise<string>; close(): void }>((resolve, reject) => {
    const sent = httpRequest(url, { localAddress, headers, agent: false }, (answer: IncomingMessage) =>
      resolve({
        status: answer.statusCode!,
        text: async () => {
          let body = '';
          for await (const chunk of answer) body += chunk;
          return body;
        },
        close: () => answer.destroy(),
      }),
    );
    sent.on('error', reject).end();
  });

describe('REGISTRY_TOKENS_FILE on a real server', () => {
  it('admits file tokens by scope, keeps secrets out of the logs, and reloads on SIGHUP without dropping watchers', async () => {
    const tokensFile = fresh('tokens.json');
    writeTokensFile(tokensFile, [['pool', 'pool-secret-1', ['read', 'write']]]);
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), REGISTRY_TOKENS_FILE: tokensFile, LOG_LEVEL: 'trace' } });
    try {
      assert.match(server.output(), /"host":"::"/, 'a tokens file opens the registry to other machines, as a token does');
      const post = (secret: string, id: string) =>
        fetch(`${server.url}/registry/vms`, { method: 'POST', body: JSON.stringify(vm(id)), headers: bearer(secret) });
      assert.equal((await post('pool-secret-1', 'pooled')).status, 201);
      assert.equal((await post('rotated-secret', 'nope')).status, 401);

      const watcher = await Watcher.open(`${server.url}/registry/events`, bearer('pool-secret-1'));
      writeTokensFile(tokensFile, [['pool', 'rotated-secret', ['read', 'write']]]);
      server.child.kill('SIGHUP');
      await sleep(500);
      assert.match(server.output(), /reloaded the tokens file/);
      assert.equal((await post('pool-secret-1', 'old')).status, 401, 'the rotated-out secret is refused');
      assert.equal((await post('rotated-secret', 'rotated')).status, 201);
      await watcher.until((events) => events.some((e) => e.data.vm.id === 'rotated'));
      await watcher.close();

      writeFileSync(tokensFile, '{"tokens": [{"name": "broken"}]}');
      server.child.kill('SIGHUP');
      await sleep(500);
      assert.match(server.output(), /kept the previous tokens/);
      assert.equal((await post('rotated-secret', 'still-works')).status, 201);

      for (const secret of ['pool-secret-1', 'rotated-secret']) assert.ok(!server.output().includes(secret), 'no secret in the logs');
    } finally {
      await server.stop();
    }
  });

  it('refuses to start on a tokens file it cannot use, with a line naming the problem', async () => {
    for (const [content, message] of [
      ['not json', /cannot read the tokens file/],
      ['{"tokens": [{"name": "a", "sha256": "xyz", "scopes": ["read"]}]}', /invalid at \/tokens\/0\/sha256/],
      ['{"tokens": [{"name": "a", "sha256": "' + 'a'.repeat(64) + '", "scopes": ["root"]}]}', /invalid at \/tokens\/0\/scopes\/0/],
    ] as const) {
      const path = fresh('bad-tokens.json');
      writeFileSync(path, content);
      const result = await runCli(['serve'], { env: { REGISTRY_DB: fresh('r.db'), REGISTRY_TOKENS_FILE: path, PORT: '0' } });
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
    }
  });

  it('vm-registry token create prints a secret that the printed entry admits', async () => {
    const created = await runCli(['token', 'create', '--name', 'ci-bot', '--scopes', 'read', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { secret, entry } = JSON.parse(created.stdout);
    assert.deepEqual(entry, { name: 'ci-bot', sha256: sha256Hex(secret), scopes: ['read'] });
    const tokensFile = fresh('tokens.json');
    writeFileSync(tokensFile, JSON.stringify({ tokens: [entry] }));
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), REGISTRY_TOKENS_FILE: tokensFile } });
    try {
      assert.equal((await fetch(`${server.url}/registry/vms`, { headers: bearer(secret) })).status, 200);
      const write = await fetch(`${server.url}/registry/vms`, { method: 'POST', body: JSON.stringify(vm('x')), headers: bearer(secret) });
      assert.equal(write.status, 403);
    } finally {
      await server.stop();
    }
  });
});

describe('limits on a real server', () => {
  it('caps open event streams per caller with 429, and frees a slot when one closes', async () => {
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), REGISTRY_MAX_WATCHERS: '2' } });
    try {
      const first = await Watcher.open(`${server.url}/registry/events`);
      const second = await Watcher.open(`${server.url}/registry/events`);
      const third = await fetch(`${server.url}/registry/events`);
      assert.equal(third.status, 429);
      assert.match((await third.json()).error, /already holds 2 open event streams/);
      await first.close();
      await sleep(200);
      const again = await Watcher.open(`${server.url}/registry/events`);
      await Promise.all([second.close(), again.close()]);
    } finally {
      await server.stop();
    }
  });

  it('caps blocking queries waiting per caller with 429, and frees the slots once they answer', async () => {
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), REGISTRY_MAX_WATCHERS: '2' } });
    const api = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
    try {
      const index = Number((await api('/registry/vms')).headers.get('x-registry-index'));
      const waiting = [api(`/registry/vms?index=${index}&wait=30s`), api(`/registry/discover/worker?index=${index}&wait=30s`)];
      while ((await (await api('/health')).json()).waiting < 2) await sleep(20);
      const third = await api(`/registry/vms?index=${index}&wait=30s`);
      assert.equal(third.status, 429);
      assert.equal(third.headers.get('retry-after'), '5');
      assert.match((await third.json()).error, /^address .+ already has 2 blocking queries waiting, the most allowed \(REGISTRY_MAX_WATCHERS\)/);
      assert.equal((await api('/registry/vms')).status, 200, 'a list that does not wait is not held, so not counted');
      await api('/registry/vms', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(vm('wakes-them')) });
      assert.deepEqual((await Promise.all(waiting)).map((answer) => answer.status), [200, 200]);
      const again = await Promise.all([1, 2].map(() => api(`/registry/vms?index=${index + 1}&wait=200ms`)));
      assert.deepEqual(again.map((answer) => answer.status), [200, 200]);
    } finally {
      await server.stop();
    }
  });

  it('REGISTRY_RATE_LIMIT answers 429 with Retry-After to an unauthenticated address', async () => {
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), REGISTRY_RATE_LIMIT: '3' } });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${server.url}/registry/vms`)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      assert.equal((await fetch(`${server.url}/health`)).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('a swarm sharing one token (every VM with the same VERS_AUTH_TOKEN)', () => {
  const TOKEN = 'swarm-wide-token';

  it('gives each address its own request budget: a runaway VM gets 429 and the VM beside it does not', async () => {
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), VERS_AUTH_TOKEN: TOKEN, REGISTRY_RATE_LIMIT: '3' } });
    try {
      const list = (from: string) => getFrom(from, `${server.url}/registry/vms`, bearer(TOKEN));
      const runaway = [];
      for (let i = 0; i < 4; i++) runaway.push((await list('127.0.0.1')).status);
      assert.deepEqual(runaway, [200, 200, 200, 429]);
      assert.equal((await list('127.0.0.2')).status, 200, 'the same token from another address has a budget of its own');
      const refused = await list('127.0.0.1');
      assert.match(JSON.parse(await refused.text()).error, /^token "VERS_AUTH_TOKEN" from \S*127\.0\.0\.1 sent more than 3 requests in a minute/);
      const anonymous = await getFrom('127.0.0.2', `${server.url}/registry/vms`);
      assert.equal(anonymous.status, 401, 'no token: counted against the address, which has budget left');
    } finally {
      await server.stop();
    }
  });

  it('gives each address its own watcher quota: one VM at its limit does not stop another watching', async () => {
    const server = await startServer({ env: { REGISTRY_DB: fresh('r.db'), VERS_AUTH_TOKEN: TOKEN, REGISTRY_MAX_WATCHERS: '1' } });
    const watch = (from: string) => getFrom(from, `${server.url}/registry/events`, bearer(TOKEN));
    try {
      const first = await watch('127.0.0.1');
      assert.equal(first.status, 200);
      const second = await watch('127.0.0.1');
      assert.equal(second.status, 429);
      const beside = await watch('127.0.0.2');
      assert.equal(beside.status, 200, 'the same token from another address may watch');
      assert.match(JSON.parse(await second.text()).error, /^token "VERS_AUTH_TOKEN" from \S*127\.0\.0\.1 already holds 1 open event streams/);
      first.close();
      beside.close();
    } finally {
      await server.stop();
    }
  });
});

describe('backup and restore', () => {
  it('vm-registry backup copies a consistent database while the server takes writes, and a server restored from it has every VM acknowledged before the backup', async () => {
    const db = fresh('live.db');
    const server = await startServer({ env: { REGISTRY_DB: db } });
    const acknowledged: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const response = await fetch(`${server.url}/registry/vms`, { method: 'POST', body: JSON.stringify(vm(`b-${i}`)) });
        if (response.status === 201) acknowledged.push(`b-${i}`);
      }
    })();
    await sleep(300);
    const beforeBackup = [...acknowledged];
    const copy = fresh('backup.db');
    const result = await runCli(['backup', copy], { env: { REGISTRY_DB: db } });
    writing = false;
    await writer;
    await server.stop();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /backed up \d+ VMs at revision \d+ to /);
    assert.ok(beforeBackup.length > 0);

    const again = await runCli(['backup', copy], { env: { REGISTRY_DB: db } });
    assert.equal(again.code, 2, 'never overwrites an existing file');
    assert.match(again.stderr, /already exists/);

    const restored = await startServer({ env: { REGISTRY_DB: copy } });
    try {
      const ids = new Set((await (await fetch(`${restored.url}/registry/vms`)).json()).vms.map((v: { id: string }) => v.id));
      assert.deepEqual(beforeBackup.filter((id) => !ids.has(id)), []);
    } finally {
      await restored.stop();
    }
    assert.ok(existsSync(copy));
  });
});
