import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, startServer, tempDir, type RunOptions, type ServerProcess } from './support/server-process.js';
import { hasScript, runCliOnTerminal, shownWidth } from './support/terminal.js';

const dir = tempDir();
let server: ServerProcess;
const baseEnv = () => ({ VERS_INFRA_URL: server.url, VERS_AUTH_TOKEN: undefined, NO_COLOR: undefined, FORCE_COLOR: undefined, COLUMNS: undefined });
const cli = (args: string[], options: RunOptions = {}) => runCli(args, { ...options, env: { ...baseEnv(), ...options.env } });
const onTerminal = (args: string[], options: RunOptions & { stty?: string } = {}) =>
  runCliOnTerminal(args, { ...options, env: { ...baseEnv(), ...options.env } });
const terminal = { skip: hasScript ? false : 'needs script(1) from util-linux for a pseudo-terminal' };

const LONG_NAME = `billing-lieutenant-${'x'.repeat(80)}-end`;
const LONG_ADDRESS = `${'a'.repeat(120)}.vm.vers.sh`;

/** The lines as shown: colour codes (on, since stdout is a terminal) left out. */
function lines(stdout: string): string[] {
  return stdout.replace(/\u001b\[[0-9;]*m/g, '').trimEnd().split('\n');
}

describe('vm-registry tables fit the terminal', () => {
  before(async () => {
    server = await startServer({ env: { REGISTRY_DB: join(dir.path, 'registry.db') } });
    const register = (id: string, ...flags: string[]) => cli(['register', id, '--role', 'worker', ...flags]);
    for (const result of [
      await register('w-short', '--name', 'short', '--address', 'w.vm'),
      await register('w-long', '--name', LONG_NAME, '--address', LONG_ADDRESS, '--service', 'pi-rpc:3001', '--service', 'board:3000/health', '--meta', 'task=invoices'),
    ]) assert.equal(result.code, 0, result.stderr);
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('under COLUMNS=80 no line of ls or discover is longer than 80, and long cells end in an ellipsis', terminal, async () => {
    for (const command of [['ls'], ['discover', 'worker']]) {
      const result = await onTerminal(command, { env: { COLUMNS: '80' } });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /\u001b\[32mrunning/, 'stdout is a terminal: colour is on');
      const shown = lines(result.stdout);
      assert.equal(shown.length, 3, `a header and one line per VM, nothing wrapped:\n${result.stdout}`);
      for (const line of shown) assert.ok(shownWidth(line) <= 80, `${shownWidth(line)} > 80: ${line}`);
      assert.match(shown[0], /ID\s+NAME\s+ROLE\s+STATUS\s+ADDRESS\s+SERVICES\s+LAST SEEN/);
      const long = shown.find((line) => line.startsWith('w-long'))!;
      assert.match(long, /billing-lieu\S*…/, 'the name is cut with an ellipsis');
      assert.match(long, /\bworker\b.*\brunning\b.*(just now|\ds ago)/, 'role, status and last seen are never cut');
    }
  });

  it('takes the width from the terminal itself when COLUMNS is unset, even one too narrow for every column', terminal, async () => {
    for (const cols of [60, 40]) {
      const result = await onTerminal(['ls'], { stty: `cols ${cols} rows 24` });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(lines(result.stdout).length, 3);
      for (const line of lines(result.stdout)) assert.ok(shownWidth(line) <= cols, `${shownWidth(line)} > ${cols}: ${line}`);
    }
  });

  it('prints everything, uncut, with --wide on a terminal', terminal, async () => {
    const result = await onTerminal(['ls', '--wide'], { env: { COLUMNS: '80' } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(lines(result.stdout)[0], /LAST SEEN\s+REGISTERED BY\s+REGISTERED\s+METADATA$/);
    const long = lines(result.stdout).find((line) => line.startsWith('w-long'))!;
    assert.ok(long.includes(LONG_NAME) && long.includes(LONG_ADDRESS) && long.includes('{"task":"invoices"}'), long);
  });

  it('uses the plain layout when stdout is not a terminal: nothing cut, whatever COLUMNS says', async () => {
    const result = await cli(['ls'], { env: { COLUMNS: '80' } });
    assert.equal(result.code, 0, result.stderr);
    const long = lines(result.stdout).find((line) => line.startsWith('w-long'))!;
    assert.ok(long.includes(LONG_NAME) && long.includes(LONG_ADDRESS) && long.includes('pi-rpc:3001,board:3000/health'), long);
    assert.doesNotMatch(result.stdout, /…|\u001b\[/);
  });

  it('discover --field skips VMs without the field; --first then gives the newest VM that has it', async () => {
    const tasks = await cli(['discover', 'worker', '--field', 'metadata.task']);
    assert.equal(tasks.code, 0, tasks.stderr);
    assert.equal(tasks.stdout, 'invoices\n', 'w-short has no metadata.task: no line for it');
    const port = await cli(['discover', 'worker', '--first', '--field', 'services.0.port']);
    assert.equal(port.code, 0, port.stderr);
    assert.equal(port.stdout, '3001\n');
    const none = await cli(['discover', 'worker', '--first', '--field', 'metadata.owner']);
    assert.equal(none.code, 1);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /no running, non-stale VM of role worker has metadata\.owner/);
    const empty = await cli(['discover', 'worker', '--field', 'metadata.owner']);
    assert.deepEqual([empty.code, empty.stdout], [0, '']);
  });

  it('prints the version with --version and -v, and the commands with no arguments', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const result = await cli([flag]);
      assert.deepEqual([result.code, result.stdout, result.stderr], [0, `vm-registry ${version}\n`, '']);
    }
    const bare = await cli([]);
    assert.equal(bare.code, 0);
    assert.match(bare.stdout, /^Usage: vm-registry <command>/);
    assert.match(bare.stdout, /^ {2}register {3,}Register a new VM/m);
    assert.match(bare.stdout, /^ {2}discover {3,}/m);
    const help = await cli(['help', 'ls']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: vm-registry ls \[options\][\s\S]*--wide/);
  });
});
