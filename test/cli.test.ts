import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aRegistration } from '../src/testing/fixtures.js';
import { runCli, startServer, tempDir, type RunOptions, type ServerProcess } from './support/server-process.js';

const dir = tempDir();
let server: ServerProcess;

/** The CLI as a script runs it: VERS_INFRA_URL set, stdout a pipe (so no colour). */
const cli = (args: string[], options: RunOptions = {}) =>
  runCli(args, { ...options, env: { VERS_INFRA_URL: server.url, VERS_AUTH_TOKEN: undefined, NO_COLOR: undefined, FORCE_COLOR: undefined, ...options.env } });

function assertOneLineError(result: { code: number | null; stdout: string; stderr: string }, code: number, message: RegExp) {
  assert.equal(result.code, code, `exit code (stderr: ${result.stderr})`);
  assert.match(result.stderr.trim(), message);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

const register = (id: string, role = 'worker', ...extra: string[]) =>
  cli(['register', id, '--name', `name-${id}`, '--role', role, '--address', `${id}.vm.vers.sh`, ...extra]);

describe('vm-registry CLI against a real server', () => {
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('registers, lists as a table, and reads JSON', async () => {
    const created = await register(
      'infra-1',
      'infra',
      '--service',
      'board:3000/health',
      '--service',
      'HTTPS://api:443',
      '--meta',
      'task=board',
      '--meta',
      'shards=3',
    );
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^id\s+infra-1$/m);
    assert.match(created.stdout, /^services\s+board:3000\/health,https:\/\/api:443$/m);

    const duplicate = await register('infra-1', 'infra');
    assertOneLineError(duplicate, 1, /^vm-registry register: VM "infra-1" is already registered; to replace it, run vm-registry put infra-1 .*\(HTTP 409\)$/);

    const table = await cli(['ls']);
    assert.equal(table.code, 0);
    const [header, row] = table.stdout.trimEnd().split('\n');
    assert.match(header, /^ID\s+NAME\s+ROLE\s+STATUS\s+ADDRESS\s+SERVICES\s+LAST SEEN$/);
    assert.match(row, /^infra-1\s+name-infra-1\s+infra\s+running\s+infra-1\.vm\.vers\.sh\s+board:3000\/health,https:\/\/api:443\s+(just now|\ds ago)$/);
    assert.doesNotMatch(table.stdout, /\u001b\[/, 'no colour when stdout is not a terminal');
    assert.match((await cli(['ls'], { env: { FORCE_COLOR: '1' } })).stdout, /\u001b\[32mrunning/);

    const json = await cli(['get', 'infra-1', '--json']);
    assert.equal(json.code, 0);
    const vm = JSON.parse(json.stdout);
    assert.deepEqual(vm.metadata, { task: 'board', shards: 3 });
    assert.deepEqual(vm.services[1], { name: 'api', port: 443, protocol: 'https' });
    assert.equal(vm.stale, false);
    assert.equal(vm.registeredBy, process.env.USER || 'cli');
  });

  it('prints one field of the first discovered VM for scripts', async () => {
    await register('infra-2', 'infra');
    const address = await cli(['discover', 'infra', '--first', '--field', 'address']);
    assert.equal(address.code, 0);
    assert.equal(address.stdout, 'infra-2.vm.vers.sh\n', 'the newest registration comes first');
    assert.equal(address.stderr, '');

    const all = await cli(['discover', 'infra', '--field', 'id']);
    assert.equal(all.stdout, 'infra-2\ninfra-1\n');
    const port = await cli(['discover', 'infra', '--first', '--field', 'services.0.port', '--json']);
    assert.equal(port.stdout, '3000\n', 'infra-2 has no services: the newest VM with one is infra-1');
    const none = await cli(['discover', 'golden', '--first', '--field', 'address']);
    assertOneLineError(none, 1, /no running, non-stale VM has role golden/);
    assert.equal(none.stdout, '');
  });

  it('updates, merging --meta into the current metadata', async () => {
    const result = await cli(['update', 'infra-1', '--status', 'paused', '--meta', 'shards=4', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const vm = JSON.parse(result.stdout);
    assert.equal(vm.status, 'paused');
    assert.deepEqual(vm.metadata, { task: 'board', shards: 4 });
    assertOneLineError(await cli(['update', 'infra-1']), 2, /nothing to change/);
    assertOneLineError(await cli(['update', 'infra-1', '--if-match', '1', '--name', 'x']), 1, /\(HTTP 412\)$/);
  });

  it('marks stale VMs in tables, judged by the server', async () => {
    const quick = await startServer({ env: { REGISTRY_DB: join(dir.path, 'stale.db'), REGISTRY_STALE_AFTER: '3s' } });
    try {
      const env = { VERS_INFRA_URL: quick.url };
      await cli(['register', 'quiet-1', '--name', 'q', '--role', 'worker', '--address', 'q.vm'], { env });
      await new Promise((resolve) => setTimeout(resolve, 3100));
      await cli(['register', 'fresh-1', '--name', 'f', '--role', 'worker', '--address', 'f.vm'], { env });
      const table = await cli(['ls'], { env });
      assert.match(table.stdout, /^fresh-1\s.*\srunning\s/m);
      assert.match(table.stdout, /^quiet-1\s.*\srunning \(stale\)\s/m);
      assert.match((await cli(['get', 'quiet-1'], { env })).stdout, /^status\s+running \(stale\)$/m);
      const stale = JSON.parse((await cli(['ls', '--stale', '--json'], { env })).stdout).vms as Array<{ id: string; stale: boolean }>;
      assert.ok(stale.some((vm) => vm.id === 'quiet-1'));
      assert.ok(stale.every((vm) => vm.stale), 'each says so itself');
    } finally {
      await quick.stop();
    }
  });

  it('heartbeats once, or every interval until interrupted', async () => {
    await register('beat-1');
    const once = await cli(['heartbeat', 'beat-1']);
    assert.equal(once.code, 0);
    assert.match(once.stdout, /^beat-1 lastSeen \d{4}-\d\d-\d\dT/);

    const loop = await cli(['heartbeat', 'beat-1', '--every', '100ms'], {
      onStdout: (stdout, child) => {
        if (stdout.split('\n').length > 3) child.kill('SIGINT');
      },
    });
    assert.equal(loop.code, 0, 'an interrupted loop ends cleanly');
    assert.ok(loop.stdout.trim().split('\n').length >= 3);

    assertOneLineError(await cli(['heartbeat', 'nobody', '--every', '100ms']), 1, /VM "nobody" is not registered \(HTTP 404\)/);
  });

  it('watches changes until interrupted', async () => {
    const watched = cli(['watch', '--role', 'lieutenant', '--json'], {
      onStdout: (stdout, child) => {
        if (stdout.includes('"deregistered"')) child.kill('SIGINT');
      },
    });
    // The watcher starts from the revision current when it connects: poll until it sees a change.
    let watching = false;
    void watched.then(() => (watching = true));
    for (let i = 0; !watching && i < 100; i++) {
      await register(`lt-${i}`, 'lieutenant');
      await cli(['rm', `lt-${i}`]);
    }
    const result = await watched;
    assert.equal(result.code, 0, result.stderr);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.ok(events.every((event) => event.vm.role === 'lieutenant'));
    assert.deepEqual(events.slice(-1).map((event) => event.type), ['deregistered']);
  });

  it('discover --watch prints the answer, then again each time it changes, and nothing for other roles', async () => {
    let answered = false;
    let printed = '';
    const watched = cli(['discover', 'custom', '--watch', '--first', '--field', 'address'], {
      // It lives through three more CLI runs (the registrations), each a process start.
      timeout: 60_000,
      onStdout: (stdout, child) => {
        printed = stdout;
        if (stdout.includes('cw-2.')) child.kill('SIGINT');
      },
      onStderr: (stderr) => (answered = stderr.includes('no running, non-stale VM has role custom')),
    });
    const until = async (check: () => boolean) => {
      for (let i = 0; !check() && i < 200; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    };
    await until(() => answered);
    await register('cw-bystander', 'worker');
    await register('cw-1', 'custom');
    await until(() => printed !== '');
    await register('cw-2', 'custom');
    const result = await watched;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'cw-1.vm.vers.sh\ncw-2.vm.vers.sh\n', 'the newest custom VM\'s address, each time it changed');
  });

  it('watch against a registry that is down says so, retries with backoff, and exits 3 (unreachable) after --timeout', async () => {
    const closed = await closedPort();
    const down = new RegExp(`^vm-registry watch: cannot reach the registry at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\); retrying in \\d+m?s$`);
    const result = await cli(['watch', '--timeout', '2s'], { env: { VERS_INFRA_URL: `http://127.0.0.1:${closed}` } });
    assert.equal(result.code, 3, result.stderr);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    const retries = lines.slice(0, -1);
    assert.ok(retries.length >= 2, `retried more than once: ${result.stderr}`);
    for (const line of retries) assert.match(line, down);
    const waits = retries.map((line) => Number(/(\d+)ms$/.exec(line)?.[1] ?? 1000 * Number(/(\d+)s$/.exec(line)![1])));
    assert.ok(waits[waits.length - 1] > waits[0], `the waits grow: ${waits.join(', ')}`);
    assert.match(lines.at(-1)!, /^vm-registry watch: cannot reach the registry at .*\(ECONNREFUSED\); gave up after --timeout 2s$/);

    const interrupted = await cli(['watch'], {
      env: { VERS_INFRA_URL: `http://127.0.0.1:${closed}` },
      onStderr: (stderr, child) => {
        if (stderr.includes('retrying')) child.kill('SIGINT');
      },
    });
    assert.match(interrupted.stderr.split('\n')[0], down, 'without --timeout it reports the outage too');
    assert.equal(interrupted.code, 0, 'and Ctrl-C ends it cleanly');
  });

  it('imports agent-services\' registry.json keeping timestamps, and exports the same format', async () => {
    const entry = {
      ...aRegistration({ id: 'legacy-lt', name: 'billing' }),
      status: 'running',
      registeredAt: '2026-01-02T03:04:05.000Z',
      lastSeen: '2026-01-02T03:09:05.000Z',
    };
    const file = join(dir.path, 'registry.json');
    writeFileSync(file, JSON.stringify({ vms: [entry] }, null, 2));
    const imported = await cli(['import', file]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.stdout, `imported 1 VMs from ${file} (1 new, 0 replaced)\n`);
    assert.deepEqual(JSON.parse((await cli(['get', 'legacy-lt', '--json'])).stdout), { ...entry, stale: true });
    assert.match((await cli(['get', 'legacy-lt'])).stdout, /^status\s+running \(stale\)$/m, 'an old lastSeen stays stale');

    const out = join(dir.path, 'export.json');
    const exported = await cli(['export', '--out', out]);
    assert.equal(exported.code, 0);
    const { vms } = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(vms.find((vm: { id: string }) => vm.id === 'legacy-lt'), entry);

    writeFileSync(file, JSON.stringify({ vms: [{ ...entry, lastSeen: 'yesterday' }] }));
    assertOneLineError(await cli(['import', file]), 1, /vms\/0\/lastSeen|lastSeen/);
    assertOneLineError(await cli(['import', join(dir.path, 'missing.json')]), 2, /cannot read .*missing\.json: ENOENT/);
  });

  it('fails with one clear line and a non-zero exit', async () => {
    assertOneLineError(await cli(['get', 'nope']), 1, /^vm-registry get: VM "nope" is not registered \(HTTP 404\)$/);
    assertOneLineError(await cli(['ls'], { env: { VERS_INFRA_URL: undefined } }), 2, /VERS_INFRA_URL/);
    const closed = await closedPort();
    assertOneLineError(
      await cli(['ls'], { env: { VERS_INFRA_URL: `http://127.0.0.1:${closed}` } }),
      3,
      new RegExp(`cannot reach the registry at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`),
    );
    assertOneLineError(await cli(['ls', '--role', 'boss']), 2, /role must be one of infra, lieutenant, worker, golden, custom/);
    assertOneLineError(await cli(['ls', '--colour']), 2, /Unknown option '--colour'/);
    assertOneLineError(await cli(['get']), 2, /get expects ID/);
    assertOneLineError(await cli(['frobnicate']), 2, /unknown command "frobnicate"/);
  });

  it('explains a missing or wrong token', async () => {
    const secured = await startServer({ env: { REGISTRY_DB: join(dir.path, 'auth.db'), VERS_AUTH_TOKEN: 's3cret', HOST: '127.0.0.1' } });
    try {
      const env = { VERS_INFRA_URL: secured.url };
      assertOneLineError(await cli(['ls'], { env }), 1, /authentication required.*\(HTTP 401\); set VERS_AUTH_TOKEN or pass --token/);
      assert.equal((await cli(['ls', '--json', '--token', 's3cret'], { env })).code, 0);
      assert.equal((await cli(['ls', '--json'], { env: { ...env, VERS_AUTH_TOKEN: 's3cret' } })).code, 0);
    } finally {
      await secured.stop();
    }
  });

  it('has --help on every command', async () => {
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    const commands = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((match) => match[1]);
    assert.deepEqual(commands, ['serve', 'register', 'put', 'ls', 'get', 'update', 'rm', 'heartbeat', 'discover', 'watch', 'import', 'export', 'backup', 'token', 'mcp']);
    for (const command of commands) {
      const help = await cli([command, '--help'], { env: { VERS_INFRA_URL: undefined } });
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`^Usage: vm-registry ${command}\\b`), command);
      assert.match(help.stdout, /--help/);
    }
  });
});

/** A port nothing listens on: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
