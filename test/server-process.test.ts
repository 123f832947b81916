import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, startServer, tempDir } from './support/server-process.js';

const dir = tempDir();
after(() => dir.remove());
let databases = 0;
const freshDb = () => join(dir.path, `registry-${databases++}.db`);

const lieutenant = (id: string) => ({
  id,
  name: id,
  role: 'lieutenant',
  address: `${id}.vm.vers.sh`,
  registeredBy: 'test',
});

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

describe('vm-registry serve', () => {
  it('without a token listens on 127.0.0.1 only and says why, and how to open it up', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb(), VERS_AUTH_TOKEN: undefined, HOST: undefined } });
    try {
      assert.match(server.output(), /listens on 127\.0\.0\.1 only.*set VERS_AUTH_TOKEN \(and HOST=/);
      assert.match(server.output(), /"host":"127\.0\.0\.1"/);
    } finally {
      await server.stop();
    }
  });

  // A swarm's agents reconnecting at once (a restart, a network blip) must queue, not have their
  // SYNs dropped into seconds of retransmission: Node's default backlog is 511.
  it('listens with a connection backlog as deep as the kernel allows, up to 4096', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb() } });
    try {
      const port = new URL(server.url).port;
      // For a listening socket, ss shows the backlog in the Send-Q column.
      const line = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n')[0];
      const backlog = Number(line.split(/\s+/)[2]);
      const kernelCap = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
      assert.equal(backlog, Math.min(4096, kernelCap), line);
    } finally {
      await server.stop();
    }
  });

  it('with VERS_AUTH_TOKEN listens on every address and guards /registry but not /health', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb(), VERS_AUTH_TOKEN: 'tok-123', HOST: undefined } });
    try {
      assert.match(server.output(), /"host":"::"/);
      assert.equal((await fetch(`${server.url}/registry/vms`)).status, 401);
      assert.equal((await fetch(`${server.url}/registry/vms`, { headers: { authorization: 'bearer tok-123' } })).status, 200);
      assert.equal((await fetch(`${server.url}/health`)).status, 200);
      assert.doesNotMatch(server.output(), /tok-123/, 'the token never reaches the logs');
    } finally {
      await server.stop();
    }
  });

  const OPEN = { VERS_AUTH_TOKEN: undefined, REGISTRY_TOKENS_FILE: undefined, REGISTRY_AUTH: undefined };

  it('refuses a non-loopback HOST without any token, naming the token settings and the opt-out, before touching the database', async () => {
    const emptyTokens = join(dir.path, 'no-tokens.json');
    writeFileSync(emptyTokens, '{"tokens": []}');
    for (const [env, args, host] of [
      [{ HOST: '0.0.0.0' }, [], '0.0.0.0'],
      [{ HOST: '::' }, [], '::'],
      [{}, ['--host', '10.1.2.3'], '10.1.2.3'],
      // A tokens file makes :: the default host, but one holding no token guards nothing.
      [{ HOST: undefined, REGISTRY_TOKENS_FILE: emptyTokens }, [], '::'],
    ] as const) {
      const db = freshDb();
      const result = await runCli(['serve', ...args], { env: { ...OPEN, REGISTRY_DB: db, PORT: '0', ...env } });
      assert.equal(result.code, 2, `HOST ${host}: ${result.stderr}`);
      assert.ok(result.stderr.includes(`HOST ${host} is not a loopback address`), result.stderr);
      assert.match(result.stderr, /VERS_AUTH_TOKEN/);
      assert.match(result.stderr, /REGISTRY_TOKENS_FILE/);
      assert.match(result.stderr, /REGISTRY_AUTH=off/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(existsSync(db), false, 'refused before the database was opened');
    }
  });

  it('serves any loopback HOST without a token', async () => {
    const server = await startServer({ env: { ...OPEN, REGISTRY_DB: freshDb(), HOST: '127.0.0.2' } });
    try {
      assert.equal((await post(`http://127.0.0.2:${server.port}/registry/vms`, lieutenant('on-loopback'))).status, 201);
    } finally {
      await server.stop();
    }
  });

  it('REGISTRY_AUTH=off serves a non-loopback HOST open on purpose, with a loud warning', async () => {
    const server = await startServer({ env: { ...OPEN, REGISTRY_DB: freshDb(), HOST: '0.0.0.0', REGISTRY_AUTH: 'off' } });
    try {
      const warning = server.output().split('\n').find((line) => line.includes('REGISTRY_AUTH=off'));
      assert.ok(warning, server.output());
      assert.equal(JSON.parse(warning).level, 40, 'logged as a warning');
      assert.match(warning, /0\.0\.0\.0/);
      assert.equal((await post(`${server.url}/registry/vms`, lieutenant('open-on-purpose'))).status, 201);
    } finally {
      await server.stop();
    }
  });

  it('flags override the environment', async () => {
    const db = freshDb();
    const server = await startServer({ env: { REGISTRY_DB: '/nonexistent/ignored.db' }, args: ['--db', db, '--stale-after', '90s'] });
    try {
      const health = await (await fetch(`${server.url}/health`)).json();
      assert.equal(health.staleAfterMs, 90_000);
      assert.ok(existsSync(db));
    } finally {
      await server.stop();
    }
  });

  it('refuses bad settings with exit code 2 and a line naming the setting', async () => {
    for (const [env, message] of [
      [{ PORT: 'eighty' }, /PORT must be a whole number/],
      [{ REGISTRY_STALE_AFTER: 'soon' }, /REGISTRY_STALE_AFTER must be a positive duration/],
      [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
      [{ VERS_VM_ID: 'has space' }, /VERS_VM_ID "has space" is not a valid VM id/],
      [{ REGISTRY_AUTH: 'on' }, /REGISTRY_AUTH must be "off" or unset \(got "on"\)/],
      [{ REGISTRY_AUTH: 'off', VERS_AUTH_TOKEN: 'tok' }, /REGISTRY_AUTH=off switches authentication off, but VERS_AUTH_TOKEN is set/],
    ] as const) {
      const result = await runCli(['serve'], { env: { REGISTRY_DB: freshDb(), ...env } });
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('refuses to start over a file that is not a database, and leaves the file alone', async () => {
    const db = freshDb();
    const garbage = 'not a database, but somebody\'s data '.repeat(200);
    writeFileSync(db, garbage);
    const result = await runCli(['serve'], { env: { REGISTRY_DB: db, PORT: '0' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`cannot open the SQLite database at ${db}.*will not start`));
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  it('keeps what it stored across a restart', async () => {
    const db = freshDb();
    const first = await startServer({ env: { REGISTRY_DB: db } });
    assert.equal((await post(`${first.url}/registry/vms`, lieutenant('survivor'))).status, 201);
    assert.equal(await first.stop(), 0);
    const second = await startServer({ env: { REGISTRY_DB: db } });
    try {
      const vm = await (await fetch(`${second.url}/registry/vms/survivor`)).json();
      assert.equal(vm.name, 'survivor');
    } finally {
      await second.stop();
    }
  });

  it('SIGTERM lets in-flight requests finish, then closes the database cleanly and exits 0', async () => {
    const db = freshDb();
    const server = await startServer({ env: { REGISTRY_DB: db } });
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      post(`${server.url}/registry/vms`, lieutenant(`drain-${i}`)).then((r) => r.status, () => 'refused'),
    );
    await Promise.race(inFlight);
    const stopping = performance.now();
    const code = await server.stop();
    // Not a speed check: a connection left open after its request would hold the close for the
    // whole keep-alive timeout (72 s); it did, in this file, before idle connections were closed
    // all through the drain.
    assert.ok(performance.now() - stopping < 30_000, 'closing waited on a keep-alive connection');
    const statuses = await Promise.all(inFlight);
    assert.equal(code, 0);
    assert.match(server.output(), /closed cleanly/);
    assert.equal(existsSync(`${db}-wal`), false, 'the WAL was folded into the database file');
    const acknowledged = statuses.filter((s) => s === 201).length;
    // Requests that arrive once closing has begun are told 503 (retry elsewhere), never half-done.
    assert.ok(statuses.every((s) => s === 201 || s === 503 || s === 'refused'), `no request failed half-way: ${statuses}`);
    assert.ok(acknowledged > 0);
    const restarted = await startServer({ env: { REGISTRY_DB: db } });
    try {
      const list = await (await fetch(`${restarted.url}/registry/vms`)).json();
      assert.ok(list.count >= acknowledged, `${list.count} stored, ${acknowledged} acknowledged`);
    } finally {
      await restarted.stop();
    }
  });

  it('answers a second server on the same port with a clear error', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb() } });
    try {
      const result = await runCli(['serve'], { env: { REGISTRY_DB: freshDb(), PORT: String(server.port) } });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /EADDRINUSE/);
    } finally {
      await server.stop();
    }
  });

  it('serve --help lists every setting with its environment name', async () => {
    const result = await runCli(['serve', '--help']);
    assert.equal(result.code, 0);
    for (const name of ['PORT', 'HOST', 'VERS_AUTH_TOKEN', 'REGISTRY_AUTH', 'REGISTRY_DB', 'REGISTRY_STALE_AFTER', 'LOG_LEVEL', 'VERS_VM_ID']) {
      assert.match(result.stdout, new RegExp(name));
    }
  });
});

describe('self-registration', () => {
  it('registers the server as infra, discoverable at once, and a restart is an upsert, not a 409', async () => {
    const db = freshDb();
    const env = { REGISTRY_DB: db, VERS_VM_ID: 'infra-vm-1', REGISTRY_SELF_ADDRESS: 'infra-vm-1.vm.vers.sh' };
    const first = await startServer({ env });
    const [vm] = (await (await fetch(`${first.url}/registry/discover/infra`)).json()).vms;
    assert.equal(vm.id, 'infra-vm-1');
    assert.equal(vm.address, 'infra-vm-1.vm.vers.sh');
    assert.equal(vm.registeredBy, 'self');
    assert.deepEqual(vm.services, [{ name: 'registry', port: first.port, healthPath: '/health' }]);
    await first.stop();

    const second = await startServer({ env, args: ['--self-name', 'the-infra'] });
    try {
      const again = await (await fetch(`${second.url}/registry/vms/infra-vm-1`)).json();
      assert.equal(again.registeredAt, vm.registeredAt);
      assert.equal(again.name, 'the-infra');
      assert.ok(again.lastSeen > vm.lastSeen);
      assert.doesNotMatch(second.output(), /"level":50/, 'no errors logged');
    } finally {
      await second.stop();
    }
  });

  it('keeps its own entry fresh and puts it back when it is deleted', async () => {
    const server = await startServer({ env: { REGISTRY_DB: freshDb(), VERS_VM_ID: 'infra-vm-2', REGISTRY_STALE_AFTER: '3s' } });
    try {
      const first = await (await fetch(`${server.url}/registry/vms/infra-vm-2`)).json();
      await fetch(`${server.url}/registry/vms/infra-vm-2`, { method: 'DELETE' });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const back = await fetch(`${server.url}/registry/vms/infra-vm-2`);
      assert.equal(back.status, 200);
      const vm = await back.json();
      assert.ok(vm.lastSeen > first.lastSeen);
      const live = await (await fetch(`${server.url}/registry/discover/infra`)).json();
      assert.equal(live.count, 1);
    } finally {
      await server.stop();
    }
  });
});
