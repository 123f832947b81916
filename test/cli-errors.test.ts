import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, startServer, tempDir, type RunOptions, type ServerProcess } from './support/server-process.js';

const dir = tempDir();
let server: ServerProcess;
const cli = (args: string[], options: RunOptions = {}) =>
  runCli(args, { ...options, env: { VERS_INFRA_URL: server.url, VERS_AUTH_TOKEN: undefined, ...options.env } });

/** Exit code and the one line on stderr. */
async function fails(args: string[], code: number, message: RegExp, options: RunOptions = {}) {
  const result = await cli(args, options);
  assert.equal(result.code, code, `vm-registry ${args.join(' ')}: exit code (stderr: ${result.stderr})`);
  assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  assert.match(result.stderr.trim(), message);
  return result;
}

const ROLES = /infra, lieutenant, worker, golden, custom/;

describe('vm-registry errors speak the CLI, with documented exit codes', () => {
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
    const created = await cli(['register', 'lt-1', '--name', 'billing', '--role', 'lieutenant', '--address', 'lt-1.vm']);
    assert.equal(created.code, 0, created.stderr);
  });
  after(async () => {
    await server.stop();
  });

  it('exits 2 on usage errors, 1 when the registry refuses, 3 when it cannot be reached', async () => {
    await fails(['ls', '--colour'], 2, /Unknown option '--colour'/);
    await fails(['ls'], 2, /VERS_INFRA_URL/, { env: { VERS_INFRA_URL: undefined } });
    await fails(['get', 'nobody'], 1, /^vm-registry get: VM "nobody" is not registered \(HTTP 404\)$/);
    await fails(['discover', 'golden', '--first'], 1, /no running, non-stale VM has role golden/);
    const port = await closedPort();
    for (const command of [['ls'], ['get', 'lt-1'], ['discover', 'infra']]) {
      await fails(command, 3, /cannot reach the registry at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/, {
        env: { VERS_INFRA_URL: `http://127.0.0.1:${port}` },
      });
    }
  });

  it('register of an id already taken suggests vm-registry put, not an HTTP call', async () => {
    const result = await fails(['register', 'lt-1', '--name', 'b', '--role', 'lieutenant', '--address', 'a'], 1, /already registered/);
    assert.match(result.stderr, /vm-registry put lt-1/);
    assert.doesNotMatch(result.stderr, /PUT \/registry|PATCH/);
  });

  it('a bad role or status is a usage error that names the accepted values', async () => {
    await fails(['register', 'x', '--name', 'n', '--role', 'boss', '--address', 'a'], 2, new RegExp(`--role must be one of ${ROLES.source} \\(got "boss"\\)`));
    await fails(['ls', '--role', 'boss'], 2, new RegExp(`--role must be one of ${ROLES.source}`));
    await fails(['discover', 'boss'], 2, new RegExp(`ROLE must be one of ${ROLES.source} \\(got "boss"\\)`));
    await fails(['watch', '--role', 'boss'], 2, new RegExp(`--role must be one of ${ROLES.source}`));
    await fails(['update', 'lt-1', '--status', 'asleep'], 2, /--status must be one of running, paused, stopped \(got "asleep"\)/);
    assert.equal(JSON.parse((await cli(['get', 'lt-1', '--json'])).stdout).status, 'running', 'nothing was written');
  });

  it('update --role says the role cannot be changed and how to re-register; put does it', async () => {
    await fails(['update', 'lt-1', '--role', 'infra'], 2, /role of a VM cannot be changed; re-register it with vm-registry put lt-1 --role ROLE/);
    assert.equal(JSON.parse((await cli(['get', 'lt-1', '--json'])).stdout).role, 'lieutenant');
    const replaced = await cli(['put', 'lt-1', '--name', 'billing', '--role', 'infra', '--address', 'lt-1.vm', '--json']);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal(JSON.parse(replaced.stdout).role, 'infra');
  });

  it('a stale --if-match is explained in terms of --if-match, and get shows the revision to use', async () => {
    const shown = await cli(['get', 'lt-1']);
    const revision = Number(/^revision\s+(\d+)$/m.exec(shown.stdout)?.[1]);
    assert.ok(revision > 0, shown.stdout);
    const updated = await cli(['update', 'lt-1', '--name', 'renamed', '--if-match', String(revision)]);
    assert.equal(updated.code, 0, updated.stderr);
    const refused = await fails(['rm', 'lt-1', '--if-match', String(revision)], 1, /VM "lt-1" has changed since revision \d+ \(--if-match\), so nothing was written; see its revision with vm-registry get lt-1/);
    assert.doesNotMatch(refused.stderr, /If-Match/);
    assert.equal((await cli(['get', 'lt-1'])).code, 0, 'still registered');
  });
});

describe('vm-registry token create --write', () => {
  const tokensFile = join(dir.path, 'tokens.json');
  const create = (name: string, ...extra: string[]) => runCli(['token', 'create', '--name', name, '--scopes', 'read', '--write', tokensFile, '--json', ...extra]);

  it('creates the tokens file 0600, appends to it atomically, and --reload makes the server accept the new token', async () => {
    const first = await create('first');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(statSync(tokensFile).mode & 0o777, 0o600);
    const secured = await startServer({ env: { REGISTRY_DB: join(dir.path, 'tokens.db'), REGISTRY_TOKENS_FILE: tokensFile, HOST: '127.0.0.1' } });
    try {
      const env = { VERS_INFRA_URL: secured.url };
      assert.equal((await cli(['ls', '--json', '--token', JSON.parse(first.stdout).secret], { env })).code, 0);

      const second = await create('second', '--reload', String(secured.child.pid));
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, new RegExp(`asked the server \\(process ${secured.child.pid}\\) to reload`));
      const { secret, entry } = JSON.parse(second.stdout);
      assert.deepEqual(JSON.parse(readFileSync(tokensFile, 'utf8')).tokens.map((t: { name: string }) => t.name), ['first', 'second']);
      assert.deepEqual(JSON.parse(readFileSync(tokensFile, 'utf8')).tokens[1], entry);
      assert.equal(statSync(tokensFile).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(dir.path).filter((file) => file.includes('tokens.json')), ['tokens.json'], 'no temporary file left');
      // SIGHUP is handled asynchronously: ask until the server has read the file again.
      let code: number | null = null;
      for (let i = 0; i < 50 && code !== 0; i++) {
        code = (await cli(['ls', '--json', '--token', secret], { env })).code;
        if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(code, 0, 'the server accepts the new token without a restart');
      assert.equal(secured.child.exitCode, null, 'and is still running');
    } finally {
      await secured.stop();
    }
  });

  it('refuses a name the file already holds, and a --reload PID that is not a server, writing nothing', async () => {
    const before = readFileSync(tokensFile, 'utf8');
    const duplicate = await create('first');
    assert.equal(duplicate.code, 2);
    assert.match(duplicate.stderr, /already holds a token named "first"/);
    assert.equal(duplicate.stdout, '', 'no secret for a token that was not added');

    const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const refused = await create('third', '--reload', String(bystander.pid));
      await new Promise((resolve) => setTimeout(resolve, 200)); // a SIGHUP, had one been sent, would have ended it by now
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, new RegExp(`process ${bystander.pid} is not vm-registry serve`));
      assert.equal(bystander.exitCode, null, 'the bystander got no SIGHUP');
      assert.equal(bystander.signalCode, null);
    } finally {
      bystander.kill();
    }
    assert.equal(readFileSync(tokensFile, 'utf8'), before);
  });
});

after(() => dir.remove());

/** A port nothing listens on: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
